"""Helpers for the model tests: tiny models, random images, panoptic targets."""

import keras
import numpy as np
import pytest

from keras_axial import models


def tiny_model(name, **overrides):
    """`get_model(name)` in its seconds-to-build form."""
    return models.get_model(name, **{**models.tiny_overrides(name), **overrides})


def random_images(batch, height, width, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype("float32")


def panoptic_targets(batch, height, width, seed=0, num_classes=3):
    """Two thing instances (class 1) and stuff (class 0 / 2) per image, as training sees them."""
    from keras_axial.data.targets import generate_panoptic_targets

    rng = np.random.default_rng(seed)
    panoptic = np.zeros((batch, height, width), "int32")
    panoptic[:, height // 2 :, :] = (num_classes - 1) * 256
    for index in range(batch):
        for instance in (1, 2):
            top = rng.integers(0, height // 2)
            left = rng.integers(0, width // 2)
            panoptic[index, top : top + height // 3, left : left + width // 3] = 256 + instance
    targets = generate_panoptic_targets(
        panoptic, thing_class_ids=[1], label_divisor=256, ignore_label=255
    )
    return {key: np.asarray(value) for key, value in targets.items()}


def synthetic_panoptic_batch(num_images, size, seed=0):
    """`(images, targets, spec)` from the embedded synthetic dataset, drawn at `size`."""
    from keras_axial.data import get_dataset_spec
    from keras_axial.data.synthetic import render_synthetic_example
    from keras_axial.data.targets import generate_panoptic_targets

    spec = get_dataset_spec("synthetic")
    class_of_category = {category: i for i, category in enumerate(spec.category_ids)}
    images, panoptic = [], []
    for index in range(num_images):
        image, segments, infos = render_synthetic_example(
            seed=seed, index=index, min_size=size, max_size=size
        )
        label = np.full(segments.shape, spec.ignore_label * spec.label_divisor, "int32")
        instances = {}
        for info in infos:
            class_id = class_of_category[info["category_id"]]
            instance = 0
            if class_id in spec.thing_class_ids and not info.get("iscrowd", 0):
                instance = instances[class_id] = instances.get(class_id, 0) + 1
            label[segments == info["id"]] = class_id * spec.label_divisor + instance
        images.append(image.astype("float32"))
        panoptic.append(label)
    targets = generate_panoptic_targets(
        np.stack(panoptic), thing_class_ids=spec.thing_class_ids,
        label_divisor=spec.label_divisor, ignore_label=spec.ignore_label,
    )
    return np.stack(images), {k: np.asarray(v) for k, v in targets.items()}, spec


@pytest.fixture
def bfloat16_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(previous)

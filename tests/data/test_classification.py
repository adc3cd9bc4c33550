"""ImageNet-style classification pipelines (image folder and TFDS)."""

import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from keras_axial.data.classification import (
    build_classification_dataset,
    build_image_folder_dataset,
    classification_input_fn,
    list_image_folder,
)


def test_image_folder_training_and_evaluation(image_folder):
    files, labels, classes = list_image_folder(image_folder)
    assert classes == ["n01440764", "n01443537", "n01484850"] and len(files) == 12
    assert labels == [0] * 4 + [1] * 4 + [2] * 4

    train = build_image_folder_dataset(image_folder, batch_size=5, image_size=32, seed=0)
    assert train.element_spec[0].shape == (5, 32, 32, 3)
    batches = [(i.numpy(), l.numpy()) for i, l in train.take(4)]  # repeats past 12 images
    again = [(i.numpy(), l.numpy()) for i, l in
             build_image_folder_dataset(image_folder, batch_size=5, image_size=32, seed=0).take(4)]
    for (a_images, a_labels), (b_images, b_labels) in zip(batches, again):
        np.testing.assert_array_equal(a_images, b_images)
        np.testing.assert_array_equal(a_labels, b_labels)
    # Images are constant per file (60 * class + 10 * index): crops keep the value.
    for images, labels in batches:
        assert labels.dtype == np.int32
        for image, label in zip(images, labels):
            assert 60 * label <= image.min() <= image.max() <= 60 * label + 30

    evaluation = build_classification_dataset(image_folder, training=False, batch_size=5,
                                              image_size=24)
    shapes = [(tuple(i.shape), l.numpy().tolist()) for i, l in evaluation]
    assert [s for s, _ in shapes] == [(5, 24, 24, 3), (5, 24, 24, 3), (2, 24, 24, 3)]
    assert sum((l for _, l in shapes), []) == [0] * 4 + [1] * 4 + [2] * 4


def test_input_fn_shards_files_per_pipeline(image_folder):
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(2, pipeline, 2)
        dataset = classification_input_fn(input_context=context, batch_size=3,
                                          source=str(image_folder), training=False, image_size=16)
        batches = list(dataset)
        assert max(b[0].shape[0] for b in batches) == 3
        seen.append(sum(int(b[0].shape[0]) for b in batches))
    assert seen == [6, 6]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_image_folder_dataset(image_folder / "missing")


def test_tfds_source(monkeypatch):
    """The TFDS path, against a stand-in for a prepared `imagenet2012` builder."""
    calls = {}

    class Builder:
        def as_dataset(self, split, shuffle_files, read_config):
            calls.update(split=split, shuffle_files=shuffle_files, config=read_config)
            images = tf.cast(tf.fill([6, 40, 30, 3], 7), tf.uint8)
            return tf.data.Dataset.from_tensor_slices(
                {"image": images, "label": tf.range(6, dtype=tf.int64)}
            )

    fake = types.ModuleType("tensorflow_datasets")
    fake.builder = lambda name, data_dir=None: calls.update(name=name, data_dir=data_dir) or (
        Builder()
    )
    fake.ReadConfig = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    dataset = build_classification_dataset(
        "tfds:imagenet2012", "validation", data_dir="/tfds", training=False, batch_size=4,
        image_size=16, seed=3,
    )
    batches = list(dataset)
    assert [tuple(b[0].shape) for b in batches] == [(4, 16, 16, 3), (2, 16, 16, 3)]
    assert batches[0][1].dtype == tf.int32 and float(batches[0][0][0, 0, 0, 0]) == 7.0
    assert calls["name"] == "imagenet2012" and calls["split"] == "validation"
    assert calls["data_dir"] == "/tfds" and calls["config"]["shuffle_seed"] == 3

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ImportError, match="pip install tensorflow-datasets"):
        build_classification_dataset("tfds:imagenet2012")

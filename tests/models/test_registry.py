"""The registry: names, validation, resolved configs, and every registered model built tiny and
trained for one step."""

import keras
import numpy as np
import pytest

from keras_axial import models
from keras_axial.losses import PanopticLoss
from tests.models.conftest import panoptic_targets, random_images, tiny_model

REGISTERED = (
    "axial_resnet_s", "axial_resnet_m", "axial_resnet_l", "axial_resnet_xl",
    "full_axial_resnet_26", "full_axial_resnet_50",
    "axial_deeplab_s", "axial_deeplab_m", "axial_deeplab_l", "axial_deeplab_xl",
)


def test_names_and_tasks():
    assert models.list_models() == sorted(REGISTERED)
    assert models.list_models("panoptic") == [n for n in sorted(REGISTERED) if "deeplab" in n]
    with pytest.raises(ValueError, match="task"):
        models.list_models("detection")


def test_unknown_names_and_overrides_are_rejected_with_the_alternatives():
    with pytest.raises(ValueError, match="axial_resnet_xs.*Registered models:.*axial_deeplab_l"):
        models.get_model("axial_resnet_xs")
    with pytest.raises(ValueError, match=r"Unknown override\(s\) \['spam'\].*width_multiplier"):
        models.get_model("axial_deeplab_s", spam=1)
    # Task arguments belong to their task only.
    with pytest.raises(ValueError, match="semantic_head_channels"):
        models.get_model("axial_resnet_s", semantic_head_channels=8)


def test_resolved_config_is_defaults_plus_row_plus_overrides():
    config = models.model_config("axial_deeplab_l", span=33, num_classes=133)
    assert config["stem"] == "inception"
    assert config["output_stride"] == 16
    assert config["width_multiplier"] == 1.0
    assert config["max_span"] == 200
    assert (config["span"], config["num_classes"]) == (33, 133)
    assert models.model_config("axial_resnet_s")["span"] is None  # global attention
    assert models.model_config("full_axial_resnet_26")["block_repeats"] == (1, 2, 4, 1)


def test_every_builder_takes_the_injected_settings():
    for name in REGISTERED:
        allowed = models.allowed_overrides(name)
        for key in ("batch_norm_momentum", "batch_norm_epsilon", "sync_batch_norm",
                    "drop_path_rate", "num_classes"):
            assert key in allowed, (name, key)


@pytest.mark.parametrize("name", models.list_models())
def test_tiny_model_builds_and_trains_one_step(name):
    model = tiny_model(name, drop_path_rate=0.1, num_classes=3)
    assert model.name == name
    if models.get_variant(name).task == "classifier":
        images, labels = random_images(2, 32, 32), np.array([0, 2])
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        assert tuple(model(images).shape) == (2, 3)
    else:
        images, labels = random_images(2, 33, 33), panoptic_targets(2, 33, 33)
        loss = PanopticLoss()
        outputs = model(images)
        assert {key: tuple(value.shape) for key, value in outputs.items()} == {
            "semantic_logits": (2, 33, 33, 3), "center_heatmap": (2, 33, 33, 1),
            "offsets": (2, 33, 33, 2),
        }
    # The stem (reached through every shortcut) and the output layers must learn; the blocks'
    # inner weights get no gradient on the first step (their last batch norm starts at zero).
    stem = model.get_layer("backbone").get_layer("stem").trainable_weights
    output = model.trainable_weights[-1]
    before = [np.array(w) for w in stem], np.array(output)
    # Eager: one step is seconds instead of the half minute a traced train step costs on CPU.
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss, run_eagerly=True)
    history = model.fit(images, labels, batch_size=2, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    if models.get_variant(name).task == "panoptic":
        assert {"semantic_loss", "center_loss", "offset_loss"} <= set(history)
    assert any(not np.array_equal(old, np.array(new)) for old, new in zip(before[0], stem))
    assert not np.array_equal(before[1], np.array(output))
    assert all(np.all(np.isfinite(np.array(w))) for w in model.trainable_weights)


def test_fixed_input_shape_and_synchronized_batch_norm():
    model = tiny_model("axial_deeplab_s", image_shape=(33, 49, 3), sync_batch_norm=True)
    assert model.input_shape == (None, 33, 49, 3)
    assert model.get_layer("semantic_head").depthwise_batch_norm.synchronized
    assert tuple(model(random_images(1, 33, 49))["offsets"].shape) == (1, 33, 49, 2)

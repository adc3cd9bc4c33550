"""Axial-DeepLab: outputs at any input size, `.keras` round trip, mixed precision + XLA,
prediction resizing, decoder and heads."""

import keras
import numpy as np
import pytest

from keras_axial import models
from keras_axial.utils import count_madds
from tests.models.conftest import random_images, tiny_model


def _numpy(outputs):
    return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}


def test_runs_at_sizes_it_was_not_built_at_and_exposes_num_classes():
    model = tiny_model("axial_deeplab_s", num_classes=5, span=5)
    assert model.num_classes == 5
    for height, width in ((33, 65), (40, 27)):  # 16k + 1 and arbitrary sizes
        # Eager calls: tracing `predict` costs more than the whole test on CPU.
        outputs = _numpy(model(random_images(1, height, width)))
        assert {k: v.shape for k, v in outputs.items()} == {
            "semantic_logits": (1, height, width, 5),
            "center_heatmap": (1, height, width, 1),
            "offsets": (1, height, width, 2),
        }
        assert all(np.all(np.isfinite(v)) for v in outputs.values())


def test_keras_file_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_model("axial_deeplab_s", num_classes=4, span=5)
    images = random_images(2, 33, 33)
    # Move the batch-norm statistics away from their initial values first.
    model(images, training=True)
    expected = _numpy(model(images))
    path = tmp_path / "axial_deeplab.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, models.AxialDeepLab)
    assert restored.get_config() == model.get_config()
    actual = _numpy(restored(images))
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key])


def test_classifier_round_trip(tmp_path):
    model = tiny_model("axial_resnet_s", num_classes=7)
    images = random_images(1, 32, 32)
    path = tmp_path / "classifier.keras"
    model.save(path)
    np.testing.assert_array_equal(keras.saving.load_model(path)(images), model(images))


def test_mixed_bfloat16_and_xla(bfloat16_policy):
    model = tiny_model("axial_deeplab_s", num_classes=3, span=5)
    assert model.get_layer("backbone").get_layer("stage2_block1").compute_dtype == "bfloat16"
    model.compile(jit_compile=True)
    outputs = model.predict(random_images(1, 33, 33), verbose=0)
    for key, value in outputs.items():
        assert value.dtype == np.float32, key
        assert np.all(np.isfinite(value)), key


def test_prediction_resize_aligns_corners_and_rescales_offsets():
    # A linear ramp is reproduced exactly by aligned-corners bilinear resizing.
    ramp = np.linspace(0.0, 1.0, 5, dtype="float32")
    offsets = np.stack(np.broadcast_arrays(ramp[:, None], 2 * ramp[None, :]), -1)[None]
    predictions = {"offsets": offsets, "center_heatmap": offsets[..., :1]}
    resized = models.resize_panoptic_predictions(predictions, (9, 17))
    big_ramp_y, big_ramp_x = np.linspace(0, 1, 9), np.linspace(0, 2, 17)
    # Offsets are in pixels: 8 output steps for 4 input steps vertically, 16 for 4 horizontally.
    np.testing.assert_allclose(resized["offsets"][0, :, 0, 0], big_ramp_y * 2, atol=1e-6)
    np.testing.assert_allclose(resized["offsets"][0, 0, :, 1], big_ramp_x * 4, atol=1e-6)
    np.testing.assert_allclose(resized["center_heatmap"][0, :, 3, 0], big_ramp_y, atol=1e-6)


def test_decoder_and_heads_shapes_and_madds():
    decoder = models.PanopticDeepLabDecoder(decoder_channels=8, projection_channels=6,
                                            low_level_channels=(4, 2))
    features = {"res5": np.ones((1, 3, 3, 5), "float32"), "res3": np.ones((1, 5, 5, 3), "float32"),
                "res2": np.ones((1, 9, 9, 2), "float32")}
    assert tuple(decoder(features).shape) == (1, 9, 9, 8)
    shapes = {key: value.shape for key, value in features.items()}
    expected = (9 * 5 * 6                            # res5 projection
                + 25 * (3 * 4 + 25 * 10 + 10 * 8)   # res3 projection, fusion
                + 81 * (2 * 2 + 25 * 10 + 10 * 8))  # res2 projection, fusion
    assert decoder.compute_madds(shapes) == count_madds(decoder, shapes) == expected
    head = models.PanopticDeepLabHead(2, intermediate_channels=4)
    assert tuple(head(np.ones((1, 9, 9, 8), "float32")).shape) == (1, 9, 9, 2)
    assert head.compute_madds((1, 9, 9, 8)) == 81 * (25 * 8 + 8 * 4 + 4 * 2)
    with pytest.raises(ValueError, match="res3"):
        decoder.build({"res5": (1, 3, 3, 5), "res2": (1, 9, 9, 2)})
    with pytest.raises(ValueError, match="decoder_channels"):
        models.PanopticDeepLabDecoder(decoder_channels=0)


def test_backbone_pyramid_strides_and_validation():
    backbone = models.AxialResNetBackbone(width_multiplier=0.125, block_repeats=(1, 1, 1, 1),
                                          stem="inception", span=5, max_span=8, output_stride=16)
    features = backbone(random_images(1, 65, 65))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "res2": (1, 17, 17, 32), "res3": (1, 9, 9, 64), "res4": (1, 5, 5, 128),
        "res5": (1, 5, 5, 256),
    }
    assert backbone.pyramid_strides == {"res2": 4, "res3": 8, "res4": 16, "res5": 16}
    assert all(np.min(v) >= 0 for v in features.values())  # activated endpoints
    blocks = [backbone.get_layer(f"stage{k}_block1") for k in (2, 3, 4, 5)]
    assert [block.strides for block in blocks] == [1, 2, 2, 1]
    rates = models.AxialResNetBackbone(width_multiplier=0.125, block_repeats=(1, 1, 1, 1),
                                       drop_path_rate=0.2)
    assert [rates.get_layer(f"stage{k}_block1").drop_path_rate for k in (2, 3, 4, 5)] == (
        pytest.approx([0.05, 0.1, 0.15, 0.2]))
    with pytest.raises(ValueError, match="stem"):
        models.AxialResNetBackbone(stem="patchify")
    with pytest.raises(ValueError, match="output_stride"):
        models.AxialResNetBackbone(output_stride=8)
    with pytest.raises(ValueError, match="width_multiplier"):
        models.AxialResNetBackbone(width_multiplier=0.3)
    with pytest.raises(TypeError, match="backbone"):
        models.AxialDeepLab(backbone="axial_resnet_s")


# Slow: XLA-compiling a training step of even the tiny model takes minutes on 2 CPU cores (the
# fast suite compiles the forward pass above and trains eagerly in test_registry.py).
@pytest.mark.slow
def test_fit_under_mixed_bfloat16_and_xla(bfloat16_policy):
    from keras_axial.losses import PanopticLoss
    from tests.models.conftest import panoptic_targets

    model = tiny_model("axial_deeplab_s", num_classes=3, span=5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=PanopticLoss(), jit_compile=True)
    history = model.fit(random_images(2, 33, 33), panoptic_targets(2, 33, 33), batch_size=2,
                        epochs=2, verbose=0).history
    assert all(np.isfinite(history[key]).all() for key in ("loss", "semantic_loss",
                                                            "center_loss", "offset_loss"))
    assert model.get_layer("backbone").get_layer("stem").trainable_weights[0].dtype == "float32"

"""Multi-scale / flip test-time augmentation."""

import keras
import numpy as np
import pytest

from keras_axial import models
from keras_axial.utils import count_madds
from tests.models.conftest import random_images, tiny_model


def _numpy(outputs):
    return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}


class ConstantOffsets(keras.Model):
    """Predicts the offsets (dy, dx) = (1, 3) everywhere and logits from the pixel values."""

    def call(self, images):
        ones = keras.ops.ones_like(images[..., :1])
        return {
            "semantic_logits": images[..., :2] / 50.0,
            "center_heatmap": images[..., :1] / 255.0,
            "offsets": keras.ops.concatenate([ones, 3.0 * ones], axis=-1),
        }


def test_flip_negates_dx():
    images = random_images(1, 9, 13)
    outputs = _numpy(models.apply_test_time_augmentation(ConstantOffsets(), images, flip=True))
    # The mirrored pass predicts dx = +3 on the mirrored image, i.e. -3 once mirrored back.
    np.testing.assert_allclose(outputs["offsets"][..., 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(outputs["offsets"][..., 1], 0.0, atol=1e-6)


def test_scales_rescale_offsets_and_average_probabilities():
    images = random_images(2, 17, 33)
    outputs = _numpy(models.apply_test_time_augmentation(ConstantOffsets(), images, (0.5, 1.0)))
    # A 0.5 scale predicts in a grid with half the steps: offsets double on the way back.
    np.testing.assert_allclose(outputs["offsets"][..., 0], (2.0 + 1.0) / 2, atol=1e-5)
    np.testing.assert_allclose(outputs["offsets"][..., 1], (6.0 + 3.0) / 2, atol=1e-5)
    probabilities = np.exp(outputs["semantic_logits"])
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)


def test_single_scale_without_flip_is_the_model():
    model = tiny_model("axial_deeplab_s", num_classes=3, span=5)
    images = random_images(1, 33, 33)
    expected = _numpy(model(images))
    actual = _numpy(models.TestTimeAugmentation(model, scales=(1.0,), flip=False)(images))
    np.testing.assert_allclose(actual["offsets"], expected["offsets"], atol=1e-5)
    np.testing.assert_allclose(actual["center_heatmap"], expected["center_heatmap"], atol=1e-5)
    np.testing.assert_allclose(
        actual["semantic_logits"],
        keras.ops.convert_to_numpy(keras.ops.log_softmax(expected["semantic_logits"])), atol=1e-5
    )


def test_flip_equivariance_save_and_madds(tmp_path):
    model = tiny_model("axial_deeplab_s", num_classes=3, span=5)
    # Make the offset head's predictions large enough for a missing negation to show.
    head = model.get_layer("offset_head").output_conv
    head.kernel.assign(np.random.default_rng(0).normal(size=head.kernel.shape) * 30.0)
    wrapper = models.TestTimeAugmentation(model, scales=(0.75, 1.0), flip=True)
    images = random_images(1, 33, 41)
    direct = _numpy(wrapper(images))
    mirrored = _numpy(wrapper(images[:, :, ::-1]))
    assert np.abs(direct["offsets"][..., 1]).max() > 0.1
    np.testing.assert_allclose(mirrored["offsets"], direct["offsets"][:, :, ::-1] * [1, -1],
                               atol=1e-4)
    np.testing.assert_allclose(mirrored["semantic_logits"],
                               direct["semantic_logits"][:, :, ::-1], atol=1e-4)
    assert wrapper.num_classes == 3
    # 0.75 of 33x41 is 25x31; each scale runs twice (flip).
    assert count_madds(wrapper, (1, 33, 41, 3)) == (
        count_madds(model, (2, 25, 31, 3)) + count_madds(model, (2, 33, 41, 3)))
    path = tmp_path / "tta.keras"
    wrapper.save(path)
    restored = keras.saving.load_model(path)
    assert restored.scales == (0.75, 1.0) and restored.flip
    np.testing.assert_array_equal(_numpy(restored(images))["offsets"], direct["offsets"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="scales"):
        models.TestTimeAugmentation(ConstantOffsets(), scales=())
    with pytest.raises(ValueError, match="flip"):
        models.TestTimeAugmentation(ConstantOffsets(), flip="yes")

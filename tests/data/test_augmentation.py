"""Stateless augmentation ops: geometry keeps image and label aligned; photometric ops match PIL."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from keras_axial.data import augmentation

VOID = 255 * 256


def _labelled_image(height=37, width=53):
    """An image whose pixels encode their label, so alignment can be checked after transforms."""
    panoptic = np.arange(height * width, dtype=np.int32).reshape(height, width) % 7000
    image = np.stack([panoptic % 256, panoptic // 256, np.zeros_like(panoptic)], -1)
    return tf.constant(image, tf.float32), tf.constant(panoptic)


def _decode(image):
    image = image.numpy()
    return (image[..., 0] + 256 * image[..., 1]).astype(np.int32)


@pytest.mark.parametrize("crop", [(21, 29), (64, 80)])
def test_crop_pad_and_flip_keep_image_and_label_aligned(crop):
    image, panoptic = _labelled_image()
    seen_padding_positions = set()
    for index in range(6):
        seed = tf.constant([7, index])
        out_image, out_label = augmentation.random_crop_and_pad(image, panoptic, crop, seed, VOID)
        out_image, out_label = augmentation.random_horizontal_flip(out_image, out_label, seed)
        assert out_image.shape == crop + (3,) and out_label.shape == crop
        label = out_label.numpy()
        padded = label == VOID
        np.testing.assert_array_equal(_decode(out_image)[~padded], label[~padded])
        np.testing.assert_array_equal(out_image.numpy()[padded], augmentation.MEAN_PIXEL)
        if crop[0] > 37:
            assert (~padded).sum() == 37 * 53  # the whole image is inside a larger crop
            seen_padding_positions.add(tuple(np.argwhere(~padded)[0]))
    if crop[0] > 37:
        assert len(seen_padding_positions) > 1  # random padding, not always bottom-right


def test_random_scale_draws_from_the_steps_and_is_stateless():
    image, panoptic = _labelled_image(40, 60)
    factors = augmentation.scale_factors(0.5, 2.0, 0.1)
    assert len(factors) == 16 and factors[0] == 0.5 and factors[-1] == 2.0
    heights = set()
    for index in range(12):
        seed = tf.constant([1, index])
        scaled_image, scaled_label = augmentation.random_scale(image, panoptic, seed)
        again = augmentation.random_scale(image, panoptic, seed)[1]
        np.testing.assert_array_equal(scaled_label.numpy(), again.numpy())
        height = scaled_label.shape[0]
        assert any(round(40 * f) == height for f in factors)
        assert scaled_image.shape[:2] == scaled_label.shape
        assert set(np.unique(scaled_label.numpy())) <= set(np.unique(panoptic.numpy()))
        heights.add(height)
    assert len(heights) > 4
    with pytest.raises(ValueError, match="min_scale"):
        augmentation.scale_factors(2.0, 1.0, 0.1)


def _pil(image, op):
    return np.asarray(op(Image.fromarray(image.astype(np.uint8))), np.float32)


@pytest.mark.parametrize(
    "name, magnitude, reference",
    [
        ("equalize", 0.2, ImageOps.equalize),
        ("autocontrast", 0.2, ImageOps.autocontrast),
        ("posterize", 0.5, lambda im: ImageOps.posterize(im, 6)),
        ("solarize", 0.25, lambda im: ImageOps.solarize(im, 192)),
        ("invert", 0.2, ImageOps.invert),
    ],
)
def test_photometric_ops_match_pil(name, magnitude, reference):
    rng = np.random.default_rng(0)
    image = rng.integers(40, 200, (24, 30, 3)).astype(np.float32)
    image[..., 2] = rng.integers(0, 120, (24, 30))
    result = augmentation._photometric_op(name, tf.constant(image), magnitude, 1.0).numpy()
    np.testing.assert_allclose(result, _pil(image, reference), atol=1.0)


def test_photometric_augment_is_stateless_and_in_range():
    image = tf.constant(np.random.default_rng(1).uniform(0, 255, (33, 17, 3)), tf.float32)
    for name in augmentation.ALL_PHOTOMETRIC_OPS:
        out = augmentation.photometric_augment(
            image, tf.constant([3, 4]), num_ops=3, magnitude=0.6, probability=1.0, ops=[name]
        )
        assert out.shape == image.shape
        assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255.0
        assert float(tf.reduce_max(tf.abs(out - image))) > 0, name
    seed = tf.constant([9, 9])
    a = augmentation.photometric_augment(image, seed, magnitude=0.5, probability=1.0)
    b = augmentation.photometric_augment(image, seed, magnitude=0.5, probability=1.0)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    unchanged = augmentation.photometric_augment(image, seed, probability=0.0)
    np.testing.assert_array_equal(unchanged.numpy(), image.numpy())
    with pytest.raises(ValueError, match="Photometric ops"):
        augmentation.photometric_augment(image, seed, ops=["blur"])

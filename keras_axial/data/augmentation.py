"""Data augmentation for panoptic training, with stateless random ops only.

Every function takes a `seed` (an int tensor of shape `[2]`) and is a pure function of its inputs
and that seed, so a pipeline that derives the seed from a base seed and the element's index gives
the same augmentation whatever the parallelism or the order in which elements are processed.

Geometric ops (`random_scale`, `random_crop_and_pad`, `random_horizontal_flip`) move an image
(float32 `[H, W, 3]` in 0..255) and its panoptic label map (int32 `[H, W]`) together. Photometric
ops (`photometric_augment`) change the image only: a RandAugment-style draw of `num_ops`
AutoAugment-like ops (brightness, contrast, color, sharpness, hue, autocontrast, equalize,
posterize, solarize; invert on request) at one `magnitude`, each applied with `probability`.

Reference:
    Panoptic-DeepLab's scale / crop / flip protocol (SPEC §7.1); deeplab2's AutoAugment
    photometric policy at magnitude scale 0.2 (SPEC §7.2), of which this is a random-op variant.
"""

import tensorflow as tf

MEAN_PIXEL = 127.5

PHOTOMETRIC_OPS = (
    "brightness",
    "contrast",
    "color",
    "sharpness",
    "hue",
    "autocontrast",
    "equalize",
    "posterize",
    "solarize",
)
ALL_PHOTOMETRIC_OPS = PHOTOMETRIC_OPS + ("invert",)


def split_seed(seed, num):
    """`num` independent `[2]` seeds from one."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=num))


# --- geometry ------------------------------------------------------------------------------------


def scale_factors(min_scale, max_scale, scale_step):
    """The scale factors `random_scale` draws from (a Python list; `[]` means continuous)."""
    if not 0 < min_scale <= max_scale:
        raise ValueError(
            f"Expected 0 < min_scale <= max_scale. Received: min_scale={min_scale}, "
            f"max_scale={max_scale}"
        )
    if scale_step < 0:
        raise ValueError(f"`scale_step` must be >= 0. Received: scale_step={scale_step}")
    if scale_step == 0:
        return [] if max_scale > min_scale else [min_scale]
    count = int(round((max_scale - min_scale) / scale_step)) + 1
    return [round(min_scale + i * scale_step, 6) for i in range(count)]


def resize(image, panoptic, size):
    """Bilinear image, nearest-neighbour label resize to `size` (`[height, width]` int32)."""
    image = tf.image.resize(image, size, method="bilinear")
    panoptic = tf.image.resize(panoptic[..., tf.newaxis], size, method="nearest")[..., 0]
    return image, panoptic


def random_scale(image, panoptic, seed, min_scale=0.5, max_scale=2.0, scale_step=0.1):
    """Resizes by a random factor from `min_scale, min_scale + step, ..., max_scale`.

    Args:
        image: float32 `[H, W, 3]`.
        panoptic: int32 `[H, W]`.
        seed: int `[2]`.
        min_scale: defaults to `0.5`.
        max_scale: defaults to `2.0`.
        scale_step: defaults to `0.1`; `0` draws the factor uniformly from the range.

    Returns:
        `(image, panoptic)` resized.
    """
    factors = scale_factors(min_scale, max_scale, scale_step)
    if factors:
        index = tf.random.stateless_uniform([], seed, 0, len(factors), dtype=tf.int32)
        factor = tf.gather(tf.constant(factors, tf.float32), index)
    else:
        factor = tf.random.stateless_uniform([], seed, min_scale, max_scale)
    size = tf.cast(tf.shape(panoptic), tf.float32) * factor
    size = tf.maximum(tf.cast(tf.round(size), tf.int32), 1)
    return resize(image, panoptic, size)


def resize_longest_side(image, panoptic, longest_side):
    """Resizes so that the longer side is `longest_side` pixels (aspect ratio kept)."""
    shape = tf.cast(tf.shape(panoptic), tf.float32)
    factor = longest_side / tf.reduce_max(shape)
    size = tf.maximum(tf.cast(tf.round(shape * factor), tf.int32), 1)
    return resize(image, panoptic, size)


def pad_to_size(image, panoptic, size, void_label, top=0, left=0, pad_value=MEAN_PIXEL):
    """Pads to at least `size` (`[height, width]`), with `top`/`left` rows/columns before.

    The image is padded with `pad_value` (the mean pixel: 0 after the model's normalisation), the
    label with `void_label`.
    """
    shape = tf.shape(panoptic)
    extra = tf.maximum(tf.convert_to_tensor(size, tf.int32) - shape, 0)
    top = tf.minimum(top, extra[0])
    left = tf.minimum(left, extra[1])
    paddings = [[top, extra[0] - top], [left, extra[1] - left]]
    image = tf.pad(image, paddings + [[0, 0]], constant_values=pad_value)
    panoptic = tf.pad(panoptic, paddings, constant_values=void_label)
    return image, panoptic


def random_crop_and_pad(image, panoptic, crop_size, seed, void_label, pad_value=MEAN_PIXEL):
    """Random crop of `crop_size`; smaller images are first padded at a random position.

    Args:
        image: float32 `[H, W, 3]`.
        panoptic: int32 `[H, W]`.
        crop_size: `(height, width)`.
        seed: int `[2]`.
        void_label: label value of padded pixels (`ignore_label * label_divisor`).
        pad_value: image value of padded pixels. Defaults to `127.5`.

    Returns:
        `(image [crop_h, crop_w, 3], panoptic [crop_h, crop_w])` with static shapes.
    """
    crop_height, crop_width = crop_size
    pad_seed, crop_seed = split_seed(seed, 2)
    shape = tf.shape(panoptic)
    extra = tf.maximum(tf.constant([crop_height, crop_width]) - shape, 0)
    top_left = tf.random.stateless_uniform([2], pad_seed, 0, tf.int32.max, dtype=tf.int32)
    top_left = top_left % (extra + 1)
    image, panoptic = pad_to_size(
        image, panoptic, [crop_height, crop_width], void_label, top_left[0], top_left[1],
        pad_value,
    )
    shape = tf.shape(panoptic)
    room = shape - tf.constant([crop_height, crop_width])
    offset = tf.random.stateless_uniform([2], crop_seed, 0, tf.int32.max, dtype=tf.int32)
    offset = offset % (room + 1)
    image = tf.slice(image, [offset[0], offset[1], 0], [crop_height, crop_width, 3])
    panoptic = tf.slice(panoptic, offset, [crop_height, crop_width])
    return tf.ensure_shape(image, [crop_height, crop_width, 3]), tf.ensure_shape(
        panoptic, [crop_height, crop_width]
    )


def random_horizontal_flip(image, panoptic, seed, probability=0.5):
    """Mirrors image and label left-right with `probability`."""
    flip = tf.random.stateless_uniform([], seed) < probability
    image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
    panoptic = tf.cond(flip, lambda: tf.reverse(panoptic, [1]), lambda: panoptic)
    return image, panoptic


# --- photometric ---------------------------------------------------------------------------------


def _blend(degenerate, image, factor):
    return tf.clip_by_value(degenerate + factor * (image - degenerate), 0.0, 255.0)


def _grayscale(image):
    return tf.image.rgb_to_grayscale(image)  # [H, W, 1]


def _sharpen_degenerate(image):
    """PIL's SMOOTH filter on the interior; the border keeps its pixels."""
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "VALID")[0]
    interior = tf.pad(smooth, [[1, 1], [1, 1], [0, 0]])
    shape = tf.shape(image)
    mask = tf.pad(tf.ones(shape[:2] - 2, tf.bool), [[1, 1], [1, 1]])[..., None]
    return tf.where(mask, interior, image)


def _autocontrast(image):
    low = tf.reduce_min(image, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(image, axis=[0, 1], keepdims=True)
    scale = tf.where(high > low, 255.0 / tf.maximum(high - low, 1e-3), 1.0)
    offset = tf.where(high > low, low, 0.0)
    return tf.clip_by_value((image - offset) * scale, 0.0, 255.0)


def _equalize(image):
    """Per-channel histogram equalisation of a uint8-valued image (PIL's ImageOps.equalize)."""
    values = tf.cast(tf.round(image), tf.int32)  # [H, W, 3]
    # One 768-bin histogram: channel c uses bins 256 c .. 256 c + 255.
    histogram = tf.reshape(
        tf.math.bincount(values + tf.range(3) * 256, minlength=768, maxlength=768), [3, 256]
    )
    total = tf.reduce_sum(histogram, axis=1)
    count_of_max = tf.gather(histogram, tf.reduce_max(values, axis=[0, 1]), batch_dims=1)
    step = (total - count_of_max) // 255  # [3]
    before = tf.cumsum(histogram, axis=1, exclusive=True)
    lut = tf.minimum((before + step[:, None] // 2) // tf.maximum(step[:, None], 1), 255)
    # A channel with a single value (step 0) is left as it is.
    lut = tf.where(step[:, None] > 0, lut, tf.range(256)[None, :])
    equalized = tf.gather(lut, tf.transpose(values, [2, 0, 1]), batch_dims=1)
    return tf.cast(tf.transpose(equalized, [1, 2, 0]), tf.float32)


def _photometric_op(name, image, magnitude, sign):
    """One op at `magnitude` in [0, 1]; `sign` (+1 / -1) picks the direction of signed ops."""
    factor = 1.0 + sign * magnitude * 0.9
    if name == "brightness":
        return _blend(tf.zeros_like(image), image, factor)
    if name == "contrast":
        return _blend(tf.reduce_mean(_grayscale(image)), image, factor)
    if name == "color":
        return _blend(_grayscale(image), image, factor)
    if name == "sharpness":
        return _blend(_sharpen_degenerate(image), image, factor)
    if name == "hue":
        return tf.image.adjust_hue(image / 255.0, sign * magnitude * 0.25) * 255.0
    if name == "autocontrast":
        return _autocontrast(image)
    if name == "equalize":
        return _equalize(image)
    if name == "posterize":
        shift = 2.0 ** round(4 * magnitude)
        return tf.floor(tf.round(image) / shift) * shift
    if name == "solarize":
        threshold = 256.0 - 256.0 * magnitude
        return tf.where(image >= threshold, 255.0 - image, image)
    if name == "invert":
        return 255.0 - image
    raise ValueError(f"Unknown photometric op {name!r}. Known ops: {ALL_PHOTOMETRIC_OPS}")


def validate_photometric_ops(ops):
    ops = tuple(ops)
    unknown = [op for op in ops if op not in ALL_PHOTOMETRIC_OPS]
    if unknown or not ops:
        raise ValueError(
            f"Photometric ops must be a non-empty subset of {ALL_PHOTOMETRIC_OPS}. "
            f"Received: {ops}"
        )
    return ops


def photometric_augment(image, seed, num_ops=2, magnitude=0.2, probability=0.5,
                        ops=PHOTOMETRIC_OPS):
    """Applies `num_ops` randomly chosen photometric ops, each with `probability`.

    Args:
        image: float32 `[H, W, 3]` in 0..255.
        seed: int `[2]`.
        num_ops: ops drawn (with replacement). Defaults to `2`.
        magnitude: strength in [0, 1]; brightness/contrast/color/sharpness factors lie in
            `1 +- 0.9 magnitude`, hue shifts by `+- 0.25 magnitude` turns, posterize keeps
            `8 - round(4 magnitude)` bits, solarize inverts pixels above `256 (1 - magnitude)`.
            Defaults to `0.2` (deeplab2's magnitude scale).
        probability: chance that each drawn op is applied. Defaults to `0.5`.
        ops: names of the ops to draw from. Defaults to `PHOTOMETRIC_OPS` (all but invert).

    Returns:
        The augmented float32 image in 0..255.

    Example:
        >>> image = photometric_augment(image, seed=tf.constant([1, 2]), magnitude=0.3)
    """
    ops = validate_photometric_ops(ops)
    if not 0.0 <= magnitude <= 1.0:
        raise ValueError(f"`magnitude` must be in [0, 1]. Received: magnitude={magnitude}")
    for op_seed in split_seed(seed, num_ops) if num_ops else []:
        image = _random_photometric_op(image, op_seed, ops, magnitude, probability)
    return image


def _random_photometric_op(image, seed, ops, magnitude, probability):
    choice_seed, apply_seed, sign_seed = split_seed(seed, 3)
    index = tf.random.stateless_uniform([], choice_seed, 0, len(ops), dtype=tf.int32)
    sign = tf.where(tf.random.stateless_uniform([], sign_seed) < 0.5, -1.0, 1.0)
    apply = tf.random.stateless_uniform([], apply_seed) < probability
    branches = [lambda name=name: _photometric_op(name, image, magnitude, sign) for name in ops]
    return tf.cond(apply, lambda: tf.switch_case(index, branches), lambda: image)

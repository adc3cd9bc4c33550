"""Panoptic-DeepLab training targets from a panoptic label map, with TensorFlow ops only.

`generate_panoptic_targets` turns `panoptic = semantic * label_divisor + instance` into the target
dict the panoptic loss consumes (ARCHITECTURE.md, "Targets"). It is vectorised (no Python loop
over pixels or instances), works on symbolic shapes inside `tf.data.Dataset.map`, on one label map
`[H, W]` or a batch `[B, H, W]`, and is deterministic.

Conventions (SPEC §5):

- Void pixels have `semantic == ignore_label`.
- A thing pixel with instance id 0 is **crowd**: it keeps its class in the semantic target, but it
  gets no center, no offset, and center weight 0. (The COCO converter maps crowd to void by default;
  Cityscapes and the synthetic dataset keep crowd regions as instance 0 of their thing class.)
- Instance centre = the mean `(y, x)` of the instance's pixels **in the given (augmented) crop**,
  rounded half up to the nearest pixel.
- Heatmap = max over instances of `exp(-((y - cy)^2 + (x - cx)^2) / (2 sigma^2))`, truncated to a
  square window of `6 sigma + 3` pixels around the centre (51 px for sigma 8, as deeplab2; the
  value at the window edge is exp(-4.9) ~ 0.008).
- Offsets `(dy, dx) = centre - pixel` in integer pixels on instance pixels, 0 elsewhere.
- Weights: `semantic_weights` 0 on void, `small_instance_weight` on pixels of instances whose area
  in the crop is below `small_instance_area`, 1 elsewhere; `center_weights` 0 on void and crowd,
  1 elsewhere; `offset_weights` 1 on instance (non-crowd thing) pixels, 0 elsewhere.

Reference:
    Cheng et al., "Panoptic-DeepLab", CVPR 2020; deeplab2 `data/sample_generator.py`.
"""

import math

import tensorflow as tf

# Segment keys pack (batch index, panoptic id); panoptic ids fit 24 bits (`dataset_spec`).
_KEY_STRIDE = 2**24


def generate_panoptic_targets(
    panoptic,
    *,
    thing_class_ids,
    label_divisor,
    ignore_label,
    sigma=8.0,
    small_instance_area=4096,
    small_instance_weight=3.0,
):
    """Computes semantic, center and offset targets and their weights.

    Args:
        panoptic: int tensor `[H, W]` or `[B, H, W]`, `semantic * label_divisor + instance`.
        thing_class_ids: contiguous ids of the thing classes.
        label_divisor: the panoptic label divisor.
        ignore_label: semantic id of void pixels.
        sigma: standard deviation of the center Gaussian in pixels. Defaults to `8.0`.
        small_instance_area: instances with fewer pixels than this get `small_instance_weight` in
            the semantic loss. Defaults to `4096` (64 x 64).
        small_instance_weight: that weight. Defaults to `3.0`.

    Returns:
        A dict with, for an input of shape `S = [H, W]` or `[B, H, W]`:
        `"semantic"` int32 `S`, `"semantic_weights"` float32 `S`, `"center_heatmap"` float32
        `S + [1]`, `"center_weights"` float32 `S`, `"offsets"` float32 `S + [2]` (dy, dx),
        `"offset_weights"` float32 `S`.

    Example:
        >>> panoptic = tf.fill([65, 65], 2 * 256 + 1)  # one instance of thing class 2
        >>> targets = generate_panoptic_targets(
        ...     panoptic, thing_class_ids=[2], label_divisor=256, ignore_label=255)
        >>> float(targets["center_heatmap"][32, 32, 0])
        1.0
    """
    if not (isinstance(label_divisor, int) and label_divisor >= 2):
        raise ValueError(f"`label_divisor` must be an int >= 2. Received: {label_divisor!r}")
    if not (isinstance(ignore_label, int) and ignore_label >= 0):
        raise ValueError(f"`ignore_label` must be a non-negative int. Received: {ignore_label!r}")
    thing_class_ids = sorted(int(i) for i in thing_class_ids)
    if any(not 0 <= i < ignore_label for i in thing_class_ids):
        raise ValueError(
            f"`thing_class_ids` must lie in [0, ignore_label={ignore_label}). "
            f"Received: {thing_class_ids}"
        )
    if not sigma > 0:
        raise ValueError(f"`sigma` must be > 0. Received: sigma={sigma!r}")

    with tf.name_scope("panoptic_targets"):
        panoptic = tf.convert_to_tensor(panoptic)
        if panoptic.shape.rank not in (2, 3):
            raise ValueError(
                f"`panoptic` must have shape [H, W] or [B, H, W]. Received: shape={panoptic.shape}"
            )
        unbatched = panoptic.shape.rank == 2
        panoptic = tf.cast(panoptic, tf.int32)
        if unbatched:
            panoptic = panoptic[tf.newaxis]
        targets = _batched_targets(
            panoptic,
            thing_class_ids=thing_class_ids,
            label_divisor=label_divisor,
            ignore_label=ignore_label,
            sigma=float(sigma),
            small_instance_area=small_instance_area,
            small_instance_weight=float(small_instance_weight),
        )
        if unbatched:
            targets = {key: value[0] for key, value in targets.items()}
        return targets


def _batched_targets(
    panoptic, thing_class_ids, label_divisor, ignore_label, sigma, small_instance_area,
    small_instance_weight,
):
    shape = tf.shape(panoptic)
    batch, height, width = shape[0], shape[1], shape[2]
    semantic = panoptic // label_divisor
    instance = panoptic % label_divisor

    is_void = tf.equal(semantic, ignore_label)
    thing_lookup = tf.constant([i in thing_class_ids for i in range(ignore_label + 1)])
    is_thing_class = tf.gather(thing_lookup, tf.clip_by_value(semantic, 0, ignore_label))
    is_instance = is_thing_class & (instance > 0)
    is_crowd = is_thing_class & tf.equal(instance, 0)

    # One segment per (image, instance); every non-instance pixel falls into segment key -1.
    batch_index = tf.broadcast_to(tf.range(batch)[:, None, None], shape)
    keys = tf.where(
        is_instance,
        tf.cast(batch_index, tf.int64) * _KEY_STRIDE + tf.cast(panoptic, tf.int64),
        tf.constant(-1, tf.int64),
    )
    segment_keys, segment_index = tf.unique(tf.reshape(keys, [-1]))
    num_segments = tf.size(segment_keys)

    y = tf.broadcast_to(tf.range(height, dtype=tf.int64)[None, :, None], shape)
    x = tf.broadcast_to(tf.range(width, dtype=tf.int64)[None, None, :], shape)
    # Integer sums: float32 would lose precision beyond 2^24 (a 513 x 513 crop already sums to 7e7).
    area = tf.math.unsorted_segment_sum(
        tf.ones_like(segment_index, dtype=tf.int64), segment_index, num_segments
    )
    sum_y = tf.math.unsorted_segment_sum(tf.reshape(y, [-1]), segment_index, num_segments)
    sum_x = tf.math.unsorted_segment_sum(tf.reshape(x, [-1]), segment_index, num_segments)
    # Rounded half up: floor(sum / area + 1/2) = (2 sum + area) // (2 area), exact in integers.
    center_y = (2 * sum_y + area) // (2 * area)
    center_x = (2 * sum_x + area) // (2 * area)

    pixel_area = tf.reshape(tf.gather(area, segment_index), shape)
    pixel_center_y = tf.reshape(tf.gather(center_y, segment_index), shape)
    pixel_center_x = tf.reshape(tf.gather(center_x, segment_index), shape)
    instance_float = tf.cast(is_instance, tf.float32)
    offsets = tf.stack(
        [
            tf.cast(pixel_center_y - y, tf.float32) * instance_float,
            tf.cast(pixel_center_x - x, tf.float32) * instance_float,
        ],
        axis=-1,
    )

    is_small = is_instance & (pixel_area < small_instance_area)
    semantic_weights = tf.where(is_void, 0.0, tf.where(is_small, small_instance_weight, 1.0))
    center_weights = tf.where(is_void | is_crowd, 0.0, 1.0)

    heatmap = _center_heatmap(segment_keys, center_y, center_x, batch, height, width, sigma)
    return {
        "semantic": semantic,
        "semantic_weights": semantic_weights,
        "center_heatmap": heatmap[..., tf.newaxis],
        "center_weights": center_weights,
        "offsets": offsets,
        "offset_weights": instance_float,
    }


def _center_heatmap(segment_keys, center_y, center_x, batch, height, width, sigma):
    """Max over instances of windowed Gaussians, by scatter-max of one window per instance.

    The cost is `num_instances * window^2`, independent of the image size, and the memory is one
    heatmap (broadcasting every instance over the whole image would need `[N, H, W]`).
    """
    radius = int(round(3 * sigma)) + 1
    steps = tf.range(-radius, radius + 1, dtype=tf.int64)
    profile = tf.exp(-tf.cast(steps * steps, tf.float32) / (2.0 * sigma * sigma))
    window = profile[:, None] * profile[None, :]  # [2r+1, 2r+1]

    valid = segment_keys >= 0
    image_index = tf.boolean_mask(segment_keys // _KEY_STRIDE, valid)  # [N]
    ys = tf.boolean_mask(center_y, valid)[:, None] + steps[None, :]  # [N, 2r+1]
    xs = tf.boolean_mask(center_x, valid)[:, None] + steps[None, :]
    height64, width64 = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    inside = ((ys >= 0) & (ys < height64))[:, :, None] & ((xs >= 0) & (xs < width64))[:, None, :]
    # Out-of-image window cells are clamped onto the border with value 0, a no-op for max >= 0.
    values = tf.where(inside, window[None], 0.0)  # [N, 2r+1, 2r+1]
    flat_index = (
        image_index[:, None, None] * height64 * width64
        + tf.clip_by_value(ys, 0, height64 - 1)[:, :, None] * width64
        + tf.clip_by_value(xs, 0, width64 - 1)[:, None, :]
    )
    heatmap = tf.tensor_scatter_nd_max(
        tf.zeros([tf.cast(batch, tf.int64) * height64 * width64], tf.float32),
        tf.reshape(flat_index, [-1, 1]),
        tf.reshape(values, [-1]),
    )
    return tf.reshape(heatmap, [batch, height, width])


class PanopticTargetGenerator:
    """`generate_panoptic_targets` bound to a `DatasetSpec`, for use in `tf.data` pipelines.

    Args:
        spec: a `keras_axial.data.DatasetSpec` (thing classes, label divisor, ignore label).
        sigma: center Gaussian sigma. Defaults to `8.0`.
        small_instance_area: defaults to `4096`.
        small_instance_weight: defaults to `3.0`.

    Call arguments:
        panoptic: int tensor `[H, W]` or `[B, H, W]`.

    Returns:
        The target dict of `generate_panoptic_targets`.

    Example:
        >>> generator = PanopticTargetGenerator(get_dataset_spec("synthetic"))
        >>> targets = generator(panoptic)
    """

    def __init__(self, spec, sigma=8.0, small_instance_area=4096, small_instance_weight=3.0):
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"`sigma` must be a positive number. Received: sigma={sigma!r}")
        if not (isinstance(small_instance_area, int) and small_instance_area >= 0):
            raise ValueError(
                "`small_instance_area` must be a non-negative int. "
                f"Received: small_instance_area={small_instance_area!r}"
            )
        if not (isinstance(small_instance_weight, (int, float)) and small_instance_weight >= 0):
            raise ValueError(
                "`small_instance_weight` must be a non-negative number. "
                f"Received: small_instance_weight={small_instance_weight!r}"
            )
        self.spec = spec
        self.sigma = float(sigma)
        self.small_instance_area = small_instance_area
        self.small_instance_weight = float(small_instance_weight)

    def __call__(self, panoptic):
        return generate_panoptic_targets(
            panoptic,
            thing_class_ids=self.spec.thing_class_ids,
            label_divisor=self.spec.label_divisor,
            ignore_label=self.spec.ignore_label,
            sigma=self.sigma,
            small_instance_area=self.small_instance_area,
            small_instance_weight=self.small_instance_weight,
        )

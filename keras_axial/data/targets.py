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
    # Labels are non-negative: truncated division is floor division, and cheaper.
    semantic = tf.truncatediv(panoptic, label_divisor)
    instance = panoptic - semantic * label_divisor

    is_void = tf.equal(semantic, ignore_label)
    thing_lookup = tf.constant([i in thing_class_ids for i in range(ignore_label + 1)])
    is_thing_class = tf.gather(thing_lookup, tf.clip_by_value(semantic, 0, ignore_label))
    is_instance = is_thing_class & (instance > 0)
    is_crowd = is_thing_class & tf.equal(instance, 0)

    # Dense segment ids instead of tf.unique: instance pixels of image b use
    # b * ids_per_image + panoptic (panoptic < ids_per_image, and > 0 since instance > 0); all
    # other pixels share id 0, which no instance uses. The tables stay small (COCO: 20480 ids per
    # image, Mapillary: 63000).
    ids_per_image = (max(thing_class_ids, default=0) + 1) * label_divisor
    static_batch, static_height, static_width = panoptic.shape
    # 32-bit sums when the static shape bounds them (a 513 x 513 crop sums y up to 7e7), else 64.
    sum_dtype = tf.int64
    if static_batch and static_height and static_width:
        largest = static_batch * static_height * static_width * max(static_height, static_width)
        if 2 * largest < 2**31 and static_batch * ids_per_image < 2**31:
            sum_dtype = tf.int32
    num_ids = tf.cast(batch, sum_dtype) * ids_per_image
    image_offset = tf.range(batch, dtype=sum_dtype)[:, None, None] * ids_per_image
    segment_id = tf.reshape(
        tf.where(is_instance, image_offset + tf.cast(panoptic, sum_dtype), 0), [-1]
    )

    y = tf.broadcast_to(tf.range(height, dtype=sum_dtype)[None, :, None], shape)
    x = tf.broadcast_to(tf.range(width, dtype=sum_dtype)[None, None, :], shape)
    # Integer sums: float32 would lose precision beyond 2^24.
    area = tf.math.unsorted_segment_sum(tf.ones_like(segment_id), segment_id, num_ids)
    sum_y = tf.math.unsorted_segment_sum(tf.reshape(y, [-1]), segment_id, num_ids)
    sum_x = tf.math.unsorted_segment_sum(tf.reshape(x, [-1]), segment_id, num_ids)
    # Rounded half up: floor(sum / area + 1/2) = (2 sum + area) // (2 area), exact in integers.
    safe_area = tf.maximum(area, 1)
    center_y = (2 * sum_y + area) // (2 * safe_area)
    center_x = (2 * sum_x + area) // (2 * safe_area)

    def per_pixel(values):
        return tf.reshape(tf.gather(tf.cast(values, tf.int32), segment_id), shape)

    pixel_area, pixel_center_y, pixel_center_x = map(per_pixel, (area, center_y, center_x))
    instance_float = tf.cast(is_instance, tf.float32)
    offsets = tf.stack(
        [
            tf.cast(pixel_center_y - tf.cast(y, tf.int32), tf.float32) * instance_float,
            tf.cast(pixel_center_x - tf.cast(x, tf.int32), tf.float32) * instance_float,
        ],
        axis=-1,
    )

    is_small = is_instance & (pixel_area < small_instance_area)
    semantic_weights = tf.where(is_void, 0.0, tf.where(is_small, small_instance_weight, 1.0))
    center_weights = tf.where(is_void | is_crowd, 0.0, 1.0)

    instances = tf.where((area > 0) & (tf.range(num_ids) % ids_per_image > 0))[:, 0]  # [N]
    heatmap = _center_heatmap(
        instances // ids_per_image,
        tf.gather(center_y, instances),
        tf.gather(center_x, instances),
        batch,
        height,
        width,
        sigma,
    )
    return {
        "semantic": semantic,
        "semantic_weights": semantic_weights,
        "center_heatmap": heatmap[..., tf.newaxis],
        "center_weights": center_weights,
        "offsets": offsets,
        "offset_weights": instance_float,
    }


def _center_heatmap(image_index, center_y, center_x, batch, height, width, sigma):
    """Max over instances of windowed Gaussians, by scatter-max of one window per instance.

    The cost is `num_instances * window^2`, independent of the image size, and the memory is one
    heatmap (broadcasting every instance over the whole image would need `[N, H, W]`).

    Args:
        image_index, center_y, center_x: `[N]` ints, the image and centre of each instance.
    """
    radius = int(round(3 * sigma)) + 1
    steps = tf.range(-radius, radius + 1, dtype=tf.int64)
    profile = tf.exp(-tf.cast(steps * steps, tf.float32) / (2.0 * sigma * sigma))
    window = profile[:, None] * profile[None, :]  # [2r+1, 2r+1]

    image_index = tf.cast(image_index, tf.int64)
    ys = tf.cast(center_y, tf.int64)[:, None] + steps[None, :]  # [N, 2r+1]
    xs = tf.cast(center_x, tf.int64)[:, None] + steps[None, :]
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

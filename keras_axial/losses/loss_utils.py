"""Helpers shared by the panoptic losses: per-image top-k averaging and Keras-style reduction."""

import keras
import numpy as np
from keras import ops


def top_k_count(num_pixels, top_k_percent):
    """K = round(top_k_percent * num_pixels) in float32 (half to even, like deeplab2), at least 1.

    `num_pixels` is an int when the shape is static (K is then an int) or a scalar tensor.
    """
    if isinstance(num_pixels, (int, np.integer)):
        return max(1, int(np.round(np.float32(top_k_percent) * np.float32(num_pixels))))
    k = ops.round(ops.cast(num_pixels, "float32") * np.float32(top_k_percent))
    return ops.maximum(ops.cast(k, "int32"), 1)


def average_top_k_per_image(pixel_losses, top_k_percent=1.0):
    """Per-image mean of the largest `top_k_percent` pixel losses over the non-zero ones.

    deeplab2's normalisation (SPEC section 8.9): the sum of the kept losses is divided by how many
    of them are non-zero (not by K or H * W), so pixels with weight 0 do not dilute the loss. An
    image whose kept losses are all zero (say, every pixel ignored) gets 0, not NaN, and no NaN
    gradient (the divisor is clamped to 1, which changes nothing since the sum is then 0).

    Args:
        pixel_losses: float `[B, ...]`, weighted per-pixel losses (>= 0).
        top_k_percent: float in (0, 1], the fraction of pixels kept per image. Defaults to 1.0.

    Returns:
        float32 `[B]`.
    """
    batch = ops.shape(pixel_losses)[0]
    losses = ops.reshape(ops.cast(pixel_losses, "float32"), (batch, -1))
    if top_k_percent < 1.0:
        k = top_k_count(ops.shape(losses)[1], top_k_percent)
        # Unsorted, as only the sum and the count matter.
        losses, _ = ops.top_k(losses, k, sorted=False)
    non_zero = ops.sum(ops.cast(losses != 0.0, "float32"), axis=1)
    return ops.sum(losses, axis=1) / ops.maximum(non_zero, 1.0)


def pixel_weights_like(pixel_weights, reference, name):
    """Per-pixel weights as float32 `[B, H, W]` (ones when None); accepts `[B, H, W, 1]`."""
    if pixel_weights is None:
        return ops.ones(ops.shape(reference)[:3], "float32")
    pixel_weights = ops.cast(ops.convert_to_tensor(pixel_weights), "float32")
    if len(pixel_weights.shape) == 4 and pixel_weights.shape[-1] == 1:
        pixel_weights = pixel_weights[..., 0]
    if len(pixel_weights.shape) != 3:
        raise ValueError(
            f"`{name}` must be per-pixel weights of shape [batch, height, width]. "
            f"Received: {name}.shape={tuple(pixel_weights.shape)}"
        )
    return pixel_weights


def per_pixel_channel_mean(values):
    """Averages a trailing channel axis: `[B, H, W, C] -> [B, H, W]`; `[B, H, W]` unchanged."""
    if len(values.shape) == 4:
        return ops.mean(values, axis=-1)
    if len(values.shape) != 3:
        raise ValueError(
            "Expected a tensor of shape [batch, height, width] or [batch, height, width, "
            f"channels]. Received: shape={tuple(values.shape)}"
        )
    return values


def check_same_shape(y_true, y_pred, loss_name):
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    if len(true_shape) != len(pred_shape) or any(
        a is not None and b is not None and a != b for a, b in zip(true_shape, pred_shape)
    ):
        raise ValueError(
            f"{loss_name}: `y_true` and `y_pred` must have the same shape. "
            f"Received: y_true.shape={true_shape}, y_pred.shape={pred_shape}"
        )


def validate_top_k_percent(top_k_percent):
    if isinstance(top_k_percent, bool) or not isinstance(
        top_k_percent, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            f"`top_k_percent` must be a float. Received: top_k_percent={top_k_percent!r}"
        )
    top_k_percent = float(top_k_percent)
    if not 0.0 < top_k_percent <= 1.0:
        raise ValueError(
            f"`top_k_percent` must be in (0, 1]. Received: top_k_percent={top_k_percent}"
        )
    return top_k_percent


def validate_ignore_label(ignore_label):
    if ignore_label is None:
        return None
    if isinstance(ignore_label, bool) or not isinstance(ignore_label, (int, np.integer)):
        raise TypeError(
            f"`ignore_label` must be an int or None. Received: ignore_label={ignore_label!r}"
        )
    if ignore_label < 0:
        raise ValueError(f"`ignore_label` must be >= 0. Received: ignore_label={ignore_label}")
    return int(ignore_label)


class PerImageLoss(keras.losses.Loss):
    """Base of the pixel losses: `per_image_loss(y_true, y_pred, pixel_weights) -> [B]`.

    `sample_weight` in `__call__` is the per-pixel weight map, applied before any per-image
    averaging (Keras' own per-sample weighting would come after it); the per-image losses are then
    reduced like a Keras built-in loss. `call` gives the per-image losses with unit weights.
    """

    def call(self, y_true, y_pred):
        return self.per_image_loss(y_true, y_pred)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            per_image = self.per_image_loss(y_true, y_pred, sample_weight)
            return reduce_per_image(per_image, None, self.reduction)


def weighted_regression_per_image(y_true, y_pred, pixel_weights, error, loss_name):
    """Per-image `[B]` mean over non-zero terms of `error(y_pred - y_true)` (channel-averaged)
    times the per-pixel weights."""
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    check_same_shape(y_true, y_pred, loss_name)
    errors = per_pixel_channel_mean(error(y_pred - y_true))
    weights = pixel_weights_like(pixel_weights, errors[..., None], "sample_weight")
    return average_top_k_per_image(errors * weights)


class _PassThrough(keras.losses.Loss):
    """`call` returns `y_pred`: runs Keras' own reduction (and its tf.distribute scaling)."""

    def call(self, y_true, y_pred):
        return y_pred


def reduce_per_image(per_image, sample_weight, reduction, scale_for_replicas=True):
    """Reduces per-image losses `[B]` the way Keras losses do.

    With `scale_for_replicas=True` this is exactly `keras.losses.Loss.__call__`'s reduction: under
    a `tf.distribute` strategy with R replicas in sync, the mean reductions are also divided by R,
    because Keras sums gradients over replicas (and `Model.train_step` multiplies the value back by
    R for the `loss` metric). With `False`, the plain per-replica value (for metrics).
    """
    if scale_for_replicas:
        return _PassThrough(reduction=reduction)(per_image, per_image, sample_weight)
    if sample_weight is not None:
        sample_weight = ops.reshape(ops.cast(sample_weight, "float32"), ops.shape(per_image))
        per_image = per_image * sample_weight
    if reduction in (None, "none"):
        return per_image
    total = ops.sum(per_image)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return ops.divide_no_nan(total, ops.sum(sample_weight))
    return total / ops.cast(ops.shape(per_image)[0], "float32")

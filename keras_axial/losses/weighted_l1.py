"""Weighted L1 over the non-zero pixels, the Panoptic-DeepLab center-offset loss."""

import keras
from keras import ops

from keras_axial.losses import loss_utils


@keras.saving.register_keras_serializable(package="keras_axial")
class WeightedL1(loss_utils.PerImageLoss):
    """Absolute error averaged over channels x per-pixel weight, averaged over non-zero terms.

    Per image: `|y_pred - y_true|` averaged over the trailing channel axis (the 2 offset
    channels dy, dx), times the pixel weight, summed, and divided by the number of non-zero
    weighted terms (deeplab2's normalisation, SPEC 8.9; about the number of thing pixels; 0 for an
    image with none). The batch reduction follows `reduction` (by default the mean over images,
    divided by the number of replicas under `tf.distribute`, like every Keras loss). Computed in
    float32.

    `sample_weight` is the per-pixel weight map `[B, H, W]` (Panoptic-DeepLab's offset weights:
    1 on non-crowd thing pixels, else 0), not Keras' per-sample weight.

    Args:
        reduction: Keras reduction over the per-image losses. Defaults to
            `"sum_over_batch_size"`.
        name: Defaults to `"weighted_l1"`.

    Call arguments:
        y_true: float `[B, H, W, 2]` target offsets (or any `[B, H, W, C]` / `[B, H, W]`).
        y_pred: float tensor of the same shape.
        sample_weight: optional float `[B, H, W]` per-pixel weights. Defaults to 1.

    Returns:
        A float32 scalar (per-image `[B]` with `reduction="none"`).

    Example:

    >>> import numpy as np
    >>> loss = WeightedL1()
    >>> float(loss(np.zeros((1, 1, 1, 2)), np.array([[[[2.0, 4.0]]]])))  # mean of |2|, |4|
    3.0
    """

    def __init__(self, reduction="sum_over_batch_size", name="weighted_l1"):
        super().__init__(name=name, reduction=reduction)

    def per_image_loss(self, y_true, y_pred, pixel_weights=None):
        """The loss of each image, float32 `[B]`, with optional per-pixel weights."""
        return loss_utils.weighted_regression_per_image(
            y_true, y_pred, pixel_weights, ops.abs, type(self).__name__
        )

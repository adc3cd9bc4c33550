"""Weighted mean squared error over the non-zero pixels, the Panoptic-DeepLab center loss."""

import keras
from keras import ops

from keras_axial.losses import loss_utils


@keras.saving.register_keras_serializable(package="keras_axial")
class WeightedMeanSquaredError(loss_utils.PerImageLoss):
    """Squared error x per-pixel weight, averaged per image over the non-zero terms.

    Per image: `(y_pred - y_true)^2` (averaged over a trailing channel axis, which is 1 for the
    center heatmap) times the pixel weight, summed, and divided by the number of non-zero
    weighted terms (deeplab2's normalisation, SPEC 8.9; 0 for an image with none). The batch
    reduction follows `reduction` (by default the mean over images, divided by the number of
    replicas under `tf.distribute`, like every Keras loss). Computed in float32.

    `sample_weight` is the per-pixel weight map `[B, H, W]` (Panoptic-DeepLab's center weights:
    0 on crowd and void), not Keras' per-sample weight.

    Args:
        reduction: Keras reduction over the per-image losses. Defaults to
            `"sum_over_batch_size"`.
        name: Defaults to `"weighted_mean_squared_error"`.

    Call arguments:
        y_true: float `[B, H, W, 1]` (or `[B, H, W]`) target heatmap.
        y_pred: float tensor of the same shape.
        sample_weight: optional float `[B, H, W]` per-pixel weights. Defaults to 1.

    Returns:
        A float32 scalar (per-image `[B]` with `reduction="none"`).

    Example:

    >>> import numpy as np
    >>> loss = WeightedMeanSquaredError()
    >>> float(loss(np.zeros((1, 1, 2, 1)), np.array([[[[1.0], [0.0]]]])))  # one non-zero term
    1.0
    """

    def __init__(self, reduction="sum_over_batch_size", name="weighted_mean_squared_error"):
        super().__init__(name=name, reduction=reduction)

    def per_image_loss(self, y_true, y_pred, pixel_weights=None):
        """The loss of each image, float32 `[B]`, with optional per-pixel weights."""
        return loss_utils.weighted_regression_per_image(
            y_true, y_pred, pixel_weights, ops.square, type(self).__name__
        )

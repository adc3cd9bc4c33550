"""Weighted bootstrapped (top-k) softmax cross-entropy, the Panoptic-DeepLab semantic loss."""

import keras
from keras import ops

from keras_axial.losses import loss_utils


@keras.saving.register_keras_serializable(package="keras_axial")
class WeightedBootstrappedCrossEntropy(loss_utils.PerImageLoss):
    """Softmax cross-entropy x per-pixel weight, averaged over the hardest pixels of each image.

    Per image: the per-pixel cross-entropy is multiplied by the pixel weight (0 on pixels labelled
    `ignore_label`); the largest `K = round(top_k_percent * H * W)` weighted losses are kept and
    their sum is divided by how many of them are non-zero (deeplab2's normalisation, SPEC 8.9); an
    image with no valid pixel contributes 0. The batch reduction then follows `reduction` (by
    default the mean over images, divided by the number of replicas under `tf.distribute`, like
    every Keras loss). Computed in float32 whatever the dtype of the logits.

    Unlike Keras' per-sample `sample_weight`, the `sample_weight` of this loss is the per-pixel
    weight map `[B, H, W]` (Panoptic-DeepLab's 3x weight on small instances, 0 on void): it is
    applied before the top-k selection. So it fits `model.fit` with a dataset yielding
    `(images, labels, pixel_weights)`.

    Args:
        top_k_percent: float in (0, 1], the fraction of pixels kept per image. Defaults to 0.2.
        ignore_label: int or None, the label of void pixels (weight forced to 0; any value is
            allowed there). Defaults to 255.
        reduction: Keras reduction over the per-image losses. Defaults to
            `"sum_over_batch_size"`.
        name: Defaults to `"weighted_bootstrapped_cross_entropy"`.

    Call arguments:
        y_true: int `[B, H, W]` (or `[B, H, W, 1]`) class ids in `0 .. C - 1` or `ignore_label`.
        y_pred: float `[B, H, W, C]` logits.
        sample_weight: optional float `[B, H, W]` per-pixel weights. Defaults to 1.

    Returns:
        A float32 scalar (per-image `[B]` with `reduction="none"`).

    Example:

    >>> import numpy as np
    >>> loss = WeightedBootstrappedCrossEntropy(top_k_percent=0.5)
    >>> labels = np.array([[[0, 1]]]); logits = np.zeros((1, 1, 2, 3), "float32")
    >>> round(float(loss(labels, logits)), 4)  # both pixels: log(3)
    1.0986

    Reference:
        Cheng et al., "Panoptic-DeepLab", CVPR 2020 (hard pixel mining from Wu et al. 2016).
    """

    def __init__(
        self,
        top_k_percent=0.2,
        ignore_label=255,
        reduction="sum_over_batch_size",
        name="weighted_bootstrapped_cross_entropy",
    ):
        super().__init__(name=name, reduction=reduction)
        self.top_k_percent = loss_utils.validate_top_k_percent(top_k_percent)
        self.ignore_label = loss_utils.validate_ignore_label(ignore_label)

    def per_image_loss(self, y_true, y_pred, pixel_weights=None):
        """The loss of each image, float32 `[B]`, with optional per-pixel weights."""
        logits = ops.cast(ops.convert_to_tensor(y_pred), "float32")
        labels = ops.convert_to_tensor(y_true)
        if len(labels.shape) == 4 and labels.shape[-1] == 1:
            labels = labels[..., 0]
        if len(logits.shape) != 4 or len(labels.shape) != 3:
            raise ValueError(
                f"{type(self).__name__}: expected labels [batch, height, width] and logits "
                f"[batch, height, width, classes]. Received: y_true.shape="
                f"{tuple(labels.shape)}, y_pred.shape={tuple(logits.shape)}"
            )
        labels = ops.cast(labels, "int32")
        weights = loss_utils.pixel_weights_like(pixel_weights, logits, "sample_weight")
        if self.ignore_label is not None:
            valid = labels != self.ignore_label
            # Any in-range id works for void pixels: their weight is 0.
            labels = ops.where(valid, labels, 0)
            weights = ops.where(valid, weights, 0.0)
        pixel_losses = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        return loss_utils.average_top_k_per_image(pixel_losses * weights, self.top_k_percent)

    def get_config(self):
        config = super().get_config()
        config.update(top_k_percent=self.top_k_percent, ignore_label=self.ignore_label)
        return config

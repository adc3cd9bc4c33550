"""The Panoptic-DeepLab training loss on the whole target and prediction dicts."""

import keras
import numpy as np

from keras_axial.losses import loss_utils
from keras_axial.losses.weighted_bootstrapped_cross_entropy import (
    WeightedBootstrappedCrossEntropy,
)
from keras_axial.losses.weighted_l1 import WeightedL1
from keras_axial.losses.weighted_mean_squared_error import WeightedMeanSquaredError

TARGET_KEYS = (
    "semantic",
    "semantic_weights",
    "center_heatmap",
    "center_weights",
    "offsets",
    "offset_weights",
)
PREDICTION_KEYS = ("semantic_logits", "center_heatmap", "offsets")


def _check_weight(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a float. Received: {name}={value!r}")
    value = float(value)
    if not value >= 0.0:
        raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
    return value


def _check_keys(kind, values, keys):
    if not isinstance(values, dict):
        raise TypeError(
            f"PanopticLoss: `{kind}` must be a dict with keys {list(keys)}. "
            f"Received: {type(values).__name__}"
        )
    missing = [key for key in keys if key not in values]
    if missing:
        raise ValueError(
            f"PanopticLoss: `{kind}` lacks {missing}; expected keys {list(keys)}. "
            f"Received keys: {sorted(values)}"
        )


@keras.saving.register_keras_serializable(package="keras_axial")
class PanopticLoss(keras.losses.Loss):
    """Panoptic-DeepLab loss: `semantic_weight * L_sem + center_weight * L_center +
    offset_weight * L_offset`.

    - `L_sem`: `WeightedBootstrappedCrossEntropy` (softmax cross-entropy x `semantic_weights`,
      the hardest `top_k_percent` of the pixels of each image, averaged over the non-zero ones).
    - `L_center`: `WeightedMeanSquaredError` of the center heatmap x `center_weights`.
    - `L_offset`: `WeightedL1` of the (dy, dx) offsets, averaged over the two channels, x
      `offset_weights`.

    Each term is computed per image (divided by its number of non-zero weighted pixel terms,
    deeplab2's normalisation; 0 for an image with none, never NaN), then reduced over the batch
    (mean by default). Everything runs in float32, whatever the prediction dtype
    (`mixed_bfloat16` / `mixed_float16` models output float32 anyway).

    Distribution: `loss(targets, predictions)` is reduced exactly like a Keras built-in loss:
    under a `tf.distribute` strategy with R replicas in sync, the per-replica mean is divided by
    R, because Keras 3 sums gradients over replicas and `Model.train_step` multiplies the
    returned value back by R for the `loss` metric. So a `compute_loss` override must return
    `loss(...)` (or `components(...)["total_loss"]`, the same value) unchanged, and the global
    loss is the mean over the global batch when every replica gets the same number of images.
    The `semantic_loss`, `center_loss` and `offset_loss` components are unweighted per-replica
    means, never divided by R: feed them to `keras.metrics.Mean` trackers.

    Args:
        semantic_weight: float, weight of the semantic term. Defaults to 1.0.
        center_weight: float, weight of the center heatmap term. Defaults to 200.0.
        offset_weight: float, weight of the offset term. Defaults to 0.01.
        top_k_percent: float in (0, 1], pixels kept by the bootstrapped cross-entropy.
            Defaults to 0.2.
        ignore_label: int or None, the semantic label of void pixels (no semantic loss there,
            whatever `semantic_weights` says). Defaults to 255.
        reduction: Keras reduction over images. Defaults to `"sum_over_batch_size"` (mean).
        name: Defaults to `"panoptic_loss"`.

    Call arguments:
        targets: dict with `"semantic"` int `[B, H, W]`, `"semantic_weights"` `[B, H, W]`,
            `"center_heatmap"` `[B, H, W, 1]`, `"center_weights"` `[B, H, W]`, `"offsets"`
            `[B, H, W, 2]`, `"offset_weights"` `[B, H, W]` (`keras_axial.data.targets`; other
            keys such as `"panoptic"` are ignored).
        predictions: dict with `"semantic_logits"` `[B, H, W, C]`, `"center_heatmap"`
            `[B, H, W, 1]`, `"offsets"` `[B, H, W, 2]` (the Axial-DeepLab outputs).
        sample_weight: optional per-image weights `[B]`. Defaults to None.

    Returns:
        A float32 scalar (per-image `[B]` with `reduction="none"`).

    Example:

    >>> import numpy as np
    >>> b, h, w, c = 2, 5, 5, 3
    >>> targets = {"semantic": np.zeros((b, h, w), "int32"),
    ...            "semantic_weights": np.ones((b, h, w), "float32"),
    ...            "center_heatmap": np.zeros((b, h, w, 1), "float32"),
    ...            "center_weights": np.ones((b, h, w), "float32"),
    ...            "offsets": np.zeros((b, h, w, 2), "float32"),
    ...            "offset_weights": np.zeros((b, h, w), "float32")}
    >>> predictions = {"semantic_logits": np.zeros((b, h, w, c), "float32"),
    ...                "center_heatmap": np.full((b, h, w, 1), 0.1, "float32"),
    ...                "offsets": np.zeros((b, h, w, 2), "float32")}
    >>> values = PanopticLoss().components(targets, predictions)
    >>> {k: round(float(v), 4) for k, v in values.items()}
    {'semantic_loss': 1.0986, 'center_loss': 0.01, 'offset_loss': 0.0, 'total_loss': 3.0986}

    Reference:
        Cheng et al., "Panoptic-DeepLab", CVPR 2020; Wang et al., "Axial-DeepLab", ECCV 2020.
    """

    def __init__(
        self,
        semantic_weight=1.0,
        center_weight=200.0,
        offset_weight=0.01,
        top_k_percent=0.2,
        ignore_label=255,
        reduction="sum_over_batch_size",
        name="panoptic_loss",
    ):
        super().__init__(name=name, reduction=reduction)
        self.semantic_weight = _check_weight("semantic_weight", semantic_weight)
        self.center_weight = _check_weight("center_weight", center_weight)
        self.offset_weight = _check_weight("offset_weight", offset_weight)
        self.top_k_percent = loss_utils.validate_top_k_percent(top_k_percent)
        self.ignore_label = loss_utils.validate_ignore_label(ignore_label)
        self.semantic_loss = WeightedBootstrappedCrossEntropy(
            top_k_percent=self.top_k_percent, ignore_label=self.ignore_label, reduction="none"
        )
        self.center_loss = WeightedMeanSquaredError(reduction="none")
        self.offset_loss = WeightedL1(reduction="none")

    def per_image_components(self, targets, predictions):
        """The three unweighted terms of each image, float32 `[B]` each."""
        _check_keys("targets", targets, TARGET_KEYS)
        _check_keys("predictions", predictions, PREDICTION_KEYS)
        return {
            "semantic_loss": self.semantic_loss.per_image_loss(
                targets["semantic"], predictions["semantic_logits"], targets["semantic_weights"]
            ),
            "center_loss": self.center_loss.per_image_loss(
                targets["center_heatmap"], predictions["center_heatmap"], targets["center_weights"]
            ),
            "offset_loss": self.offset_loss.per_image_loss(
                targets["offsets"], predictions["offsets"], targets["offset_weights"]
            ),
        }

    def _weighted_total(self, per_image):
        return (
            self.semantic_weight * per_image["semantic_loss"]
            + self.center_weight * per_image["center_loss"]
            + self.offset_weight * per_image["offset_loss"]
        )

    def call(self, y_true, y_pred):
        return self._weighted_total(self.per_image_components(y_true, y_pred))

    def __call__(self, targets, predictions, sample_weight=None):
        with keras.name_scope(self.name):
            per_image = self._weighted_total(self.per_image_components(targets, predictions))
            return loss_utils.reduce_per_image(per_image, sample_weight, self.reduction)

    def components(self, targets, predictions, sample_weight=None):
        """The three terms and the total, computed once.

        Returns:
            dict of float32 scalars (per-image `[B]` with `reduction="none"`):
            `"semantic_loss"`, `"center_loss"`, `"offset_loss"` (unweighted, per-replica,
            for metrics) and `"total_loss"` (identical to `loss(targets, predictions)`, so
            divided by the number of replicas under `tf.distribute`: the value to minimise).
        """
        with keras.name_scope(self.name):
            per_image = self.per_image_components(targets, predictions)
            values = {
                key: loss_utils.reduce_per_image(
                    value, sample_weight, self.reduction, scale_for_replicas=False
                )
                for key, value in per_image.items()
            }
            values["total_loss"] = loss_utils.reduce_per_image(
                self._weighted_total(per_image), sample_weight, self.reduction
            )
            return values

    def get_config(self):
        config = super().get_config()
        config.update(
            semantic_weight=self.semantic_weight,
            center_weight=self.center_weight,
            offset_weight=self.offset_weight,
            top_k_percent=self.top_k_percent,
            ignore_label=self.ignore_label,
        )
        return config

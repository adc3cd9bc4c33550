"""Axial-DeepLab: an Axial-ResNet backbone with Panoptic-DeepLab's decoders and heads."""

import keras

from keras_axial.models import _checks
from keras_axial.models.axial_resnet_backbone import AxialResNetBackbone
from keras_axial.models.panoptic_deeplab_decoder import PanopticDeepLabDecoder
from keras_axial.models.panoptic_deeplab_head import PanopticDeepLabHead
from keras_axial.models.panoptic_prediction_resize import PanopticPredictionResize
from keras_axial.utils.model_statistics import functional_madds

LOSS_COMPONENTS = ("semantic_loss", "center_loss", "offset_loss")


@keras.saving.register_keras_serializable(package="keras_axial")
class AxialDeepLab(keras.Model):
    """Axial-DeepLab for panoptic segmentation (semantic + center heatmap + center offsets).

    The backbone (Inception stem, span-65 axial attention, output stride 16 in the paper) feeds
    two Panoptic-DeepLab decoders without ASPP: a semantic decoder (1x1 projection of res5 to
    256 channels, fused with res3 -> 64 and res2 -> 32, 256 channels) and an instance decoder
    (res5 -> 256, res3 -> 32, res2 -> 16, 128 channels). Three heads predict at stride 4:
    semantic logits (256 -> num_classes), the center heatmap (32 -> 1) and center offsets
    (32 -> 2). All predictions are resized to the input size with aligned-corners bilinear
    interpolation, offsets rescaled with the resize, and are float32 under mixed precision.

    Any input size works, including sizes the model was not built at; sizes of the form
    `16k + 1` (e.g. 641, 1025, 1025x2049) keep every stride aligned with the image corners and
    are the documented default.

    Training: `model.compile(optimizer, loss=keras_axial.losses.PanopticLoss())` then
    `model.fit(dataset)` on `(images, targets)` batches (`targets` as produced by
    `keras_axial.data.targets`). `compute_loss` hands the whole target and prediction dicts to
    the loss and reports `semantic_loss`, `center_loss` and `offset_loss` beside `loss`.

    Sublayer names: `backbone`, `semantic_decoder`, `instance_decoder`, `semantic_head`,
    `center_head`, `offset_head`, `resize`.

    Args:
        backbone: an `AxialResNetBackbone`.
        num_classes: int, semantic classes. Defaults to `19`.
        projection_channels: int, the 1x1 projection of res5 replacing ASPP. Defaults to `256`.
        semantic_decoder_channels: int. Defaults to `256`.
        semantic_low_level_channels: two ints, projections of res3 and res2. Defaults to
            `(64, 32)`.
        instance_decoder_channels: int. Defaults to `128`.
        instance_low_level_channels: two ints. Defaults to `(32, 16)`.
        semantic_head_channels: int, intermediate channels of the semantic head.
            Defaults to `256`.
        instance_head_channels: int, intermediate channels of the center and offset heads.
            Defaults to `32`.
        batch_norm_momentum: float, for the decoders and heads. Defaults to `0.99`.
        batch_norm_epsilon: float. Defaults to `1e-3`.
        sync_batch_norm: bool. Defaults to `False`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        images: float `[batch, height, width, 3]` pixels in [0, 255].
        training: bool.

    Returns:
        A dict of float32 tensors at the input resolution:
        `"semantic_logits"` `[batch, height, width, num_classes]`,
        `"center_heatmap"` `[batch, height, width, 1]`,
        `"offsets"` `[batch, height, width, 2]`: `(dy, dx)` in pixels from each pixel to its
        instance center.

    Example:

    >>> model = keras_axial.models.get_model("axial_deeplab_s", num_classes=133)
    >>> outputs = model(np.zeros((1, 641, 641, 3), "float32"))
    >>> outputs["semantic_logits"].shape
    TensorShape([1, 641, 641, 133])

    Reference:
        Wang et al., "Axial-DeepLab: Stand-Alone Axial-Attention for Panoptic Segmentation",
        ECCV 2020, Sec. 3 (https://arxiv.org/abs/2003.07853); Cheng et al., "Panoptic-DeepLab",
        CVPR 2020.
    """

    def __init__(
        self,
        backbone,
        num_classes=19,
        projection_channels=256,
        semantic_decoder_channels=256,
        semantic_low_level_channels=(64, 32),
        instance_decoder_channels=128,
        instance_low_level_channels=(32, 16),
        semantic_head_channels=256,
        instance_head_channels=32,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        sync_batch_norm=False,
        **kwargs,
    ):
        if not isinstance(backbone, AxialResNetBackbone):
            raise TypeError(
                "`backbone` must be an AxialResNetBackbone. Received: backbone of type "
                f"{type(backbone).__name__}"
            )
        num_classes = _checks.positive_int("num_classes", num_classes)
        semantic_low_level_channels = _checks.positive_ints(
            "semantic_low_level_channels", semantic_low_level_channels, length=2
        )
        instance_low_level_channels = _checks.positive_ints(
            "instance_low_level_channels", instance_low_level_channels, length=2
        )
        batch_norm = {
            "batch_norm_momentum": batch_norm_momentum,
            "batch_norm_epsilon": batch_norm_epsilon,
            "sync_batch_norm": sync_batch_norm,
        }

        images = keras.Input(shape=backbone.image_shape, name="images")
        features = backbone(images)
        semantic = PanopticDeepLabDecoder(
            decoder_channels=semantic_decoder_channels,
            projection_channels=projection_channels,
            low_level_channels=semantic_low_level_channels,
            name="semantic_decoder",
            **batch_norm,
        )(features)
        instance = PanopticDeepLabDecoder(
            decoder_channels=instance_decoder_channels,
            projection_channels=projection_channels,
            low_level_channels=instance_low_level_channels,
            name="instance_decoder",
            **batch_norm,
        )(features)
        predictions = {
            "semantic_logits": PanopticDeepLabHead(
                num_classes, semantic_head_channels, name="semantic_head", **batch_norm
            )(semantic),
            "center_heatmap": PanopticDeepLabHead(
                1, instance_head_channels, name="center_head", **batch_norm
            )(instance),
            "offsets": PanopticDeepLabHead(
                2, instance_head_channels, name="offset_head", **batch_norm
            )(instance),
        }
        outputs = PanopticPredictionResize(name="resize")(predictions, images)
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        self.backbone = backbone
        self.num_classes = num_classes
        self.projection_channels = projection_channels
        self.semantic_decoder_channels = semantic_decoder_channels
        self.semantic_low_level_channels = semantic_low_level_channels
        self.instance_decoder_channels = instance_decoder_channels
        self.instance_low_level_channels = instance_low_level_channels
        self.semantic_head_channels = semantic_head_channels
        self.instance_head_channels = instance_head_channels
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_epsilon = batch_norm_epsilon
        self.sync_batch_norm = sync_batch_norm
        self.loss_trackers = {
            name: keras.metrics.Mean(name=name) for name in LOSS_COMPONENTS
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled panoptic loss on the whole target and prediction dicts.

        With a loss that has `components(targets, predictions)` (`PanopticLoss`), the total is
        its `"total_loss"` and the semantic, center and offset terms are tracked as metrics;
        any other compiled loss goes through Keras' default. Regularization losses are added.
        """
        components = getattr(self.loss, "components", None)
        if components is None:
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        # Per-pixel weights travel inside the targets; per-image weights, if any, go along.
        if sample_weight is None:
            values = components(y, y_pred)
        else:
            values = components(y, y_pred, sample_weight=sample_weight)
        for name, tracker in self.loss_trackers.items():
            tracker.update_state(values[name])
        total = values["total_loss"]
        for loss in self.losses:
            total = total + keras.ops.cast(keras.ops.sum(loss), total.dtype)
        return total

    def compute_madds(self, input_shape):
        """Backbone, decoders and heads (resizing is free)."""
        return functional_madds(self, input_shape)

    def get_config(self):
        return _checks.model_config(
            self,
            backbone=self.backbone,
            num_classes=self.num_classes,
            projection_channels=self.projection_channels,
            semantic_decoder_channels=self.semantic_decoder_channels,
            semantic_low_level_channels=list(self.semantic_low_level_channels),
            instance_decoder_channels=self.instance_decoder_channels,
            instance_low_level_channels=list(self.instance_low_level_channels),
            semantic_head_channels=self.semantic_head_channels,
            instance_head_channels=self.instance_head_channels,
            **_checks.batch_norm_config(self),
        )

    @classmethod
    def from_config(cls, config):
        return _checks.from_model_config(cls, config)


_PANOPTIC_ARGUMENTS = (
    "num_classes",
    "projection_channels",
    "semantic_decoder_channels",
    "semantic_low_level_channels",
    "instance_decoder_channels",
    "instance_low_level_channels",
    "semantic_head_channels",
    "instance_head_channels",
)
_SHARED_ARGUMENTS = ("batch_norm_momentum", "batch_norm_epsilon", "sync_batch_norm")


def build_axial_deeplab(name=None, **config):
    """Builds an `AxialDeepLab` from a flat configuration (what the registry resolves).

    Args:
        name: model name. Defaults to `None` (Keras chooses).
        **config: `AxialDeepLab` arguments (`num_classes`, decoder channels) and
            `AxialResNetBackbone` arguments; the batch-norm settings go to both.

    Returns:
        An `AxialDeepLab` whose backbone is named `"backbone"`.
    """
    panoptic = {key: config.pop(key) for key in _PANOPTIC_ARGUMENTS if key in config}
    shared = {key: config[key] for key in _SHARED_ARGUMENTS if key in config}
    backbone = AxialResNetBackbone(name="backbone", **config)
    return AxialDeepLab(backbone, name=name, **panoptic, **shared)

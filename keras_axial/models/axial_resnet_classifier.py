"""Axial-ResNet image classifier: backbone, global average pooling, dense layer."""

import keras

from keras_axial.models import _checks
from keras_axial.models.axial_resnet_backbone import AxialResNetBackbone
from keras_axial.utils.model_statistics import functional_madds


@keras.saving.register_keras_serializable(package="keras_axial")
class AxialResNetClassifier(keras.Model):
    """An image classifier on an `AxialResNetBackbone` (the paper's ImageNet models).

    Global average pooling of the last stage, optional dropout, a dense layer to the logits.
    Train with `model.fit` on `(images in [0, 255], integer labels)` and e.g.
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`. The logits are float32 under
    mixed precision.

    Args:
        backbone: an `AxialResNetBackbone`.
        num_classes: int, number of classes. Defaults to `1000`.
        dropout_rate: float in [0, 1), dropout before the dense layer. Defaults to `0.0`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        images: float `[batch, height, width, 3]` pixels in [0, 255].
        training: bool.

    Returns:
        float32 logits `[batch, num_classes]`.

    Example:

    >>> model = keras_axial.models.get_model("axial_resnet_s")
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> model.fit(images, labels)

    Reference:
        Wang et al., "Axial-DeepLab", ECCV 2020, Sec. 4.1 (https://arxiv.org/abs/2003.07853).
    """

    def __init__(self, backbone, num_classes=1000, dropout_rate=0.0, **kwargs):
        if not isinstance(backbone, AxialResNetBackbone):
            raise TypeError(
                "`backbone` must be an AxialResNetBackbone. Received: backbone of type "
                f"{type(backbone).__name__}"
            )
        num_classes = _checks.positive_int("num_classes", num_classes)
        dropout_rate = _checks.rate("dropout_rate", dropout_rate)

        images = keras.Input(shape=backbone.image_shape, name="images")
        features = backbone(images)["res5"]
        x = keras.layers.GlobalAveragePooling2D(name="pool")(features)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
        # float32 logits under mixed precision (softmax and loss read them in float32).
        logits = keras.layers.Dense(num_classes, dtype="float32", name="predictions")(x)
        super().__init__(inputs=images, outputs=logits, **kwargs)

        self.backbone = backbone
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate

    def compute_madds(self, input_shape):
        """Backbone plus the dense layer (pooling is free)."""
        return functional_madds(self, input_shape)

    def get_config(self):
        return _checks.model_config(
            self,
            backbone=self.backbone,
            num_classes=self.num_classes,
            dropout_rate=self.dropout_rate,
        )

    @classmethod
    def from_config(cls, config):
        return _checks.from_model_config(cls, config)


def build_axial_resnet_classifier(name=None, num_classes=1000, dropout_rate=0.0, **backbone):
    """Builds an `AxialResNetClassifier` from a flat configuration (what the registry resolves).

    Args:
        name: model name. Defaults to `None` (Keras chooses).
        num_classes: int. Defaults to `1000`.
        dropout_rate: float. Defaults to `0.0`.
        **backbone: `AxialResNetBackbone` arguments.

    Returns:
        An `AxialResNetClassifier` whose backbone is named `"backbone"`.
    """
    return AxialResNetClassifier(
        AxialResNetBackbone(name="backbone", **backbone),
        num_classes=num_classes,
        dropout_rate=dropout_rate,
        name=name,
    )

"""One branch of the Panoptic-DeepLab decoder, with a 1x1 projection in place of ASPP."""

import keras
from keras import ops

from keras_axial.layers import resize_bilinear_aligned
from keras_axial.models import _checks


@keras.saving.register_keras_serializable(package="keras_axial")
class PanopticDeepLabDecoder(keras.layers.Layer):
    """Panoptic-DeepLab's single decoder as Axial-DeepLab uses it (no ASPP).

    Axial-DeepLab removes ASPP ("axial attention already captures long-range context"), which
    deeplab2 writes as `aspp_use_only_1x1_proj_conv`: the stride-16 features go through one 1x1
    convolution + BN + ReLU. Then, for each low-level feature (stride 8, then stride 4): bilinear
    upsampling with aligned corners to its size, concatenation with its own 1x1 projection
    (+ BN + ReLU), and one depthwise-separable fusion convolution (5x5 depthwise + BN + ReLU,
    1x1 pointwise + BN + ReLU). Axial-DeepLab has two of these: the semantic decoder (256
    channels, low-level projections 64 and 32) and the instance decoder (128 channels, 32 and 16).

    Args:
        decoder_channels: int, channels of the fusion convolutions and of the output.
            Defaults to `256`.
        projection_channels: int, channels of the 1x1 projection of the high-level features
            (the ASPP replacement). Defaults to `256`.
        low_level_channels: ints, channels of the 1x1 projections of the low-level features,
            one per `low_level_keys` entry. Defaults to `(64, 32)`.
        high_level_key: str, key of the high-level features in the input dict.
            Defaults to `"res5"`.
        low_level_keys: strs, keys of the low-level features, in fusion order (coarse to fine).
            Defaults to `("res3", "res2")`.
        kernel_size: int, size of the depthwise fusion kernels. Defaults to `5`.
        batch_norm_momentum: float. Defaults to `0.99`.
        batch_norm_epsilon: float. Defaults to `1e-3`.
        sync_batch_norm: bool, synchronized batch norm across replicas. Defaults to `False`.
        kernel_initializer: initializer of every convolution. Defaults to `"he_normal"`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: dict of `[batch, height_s, width_s, channels_s]` feature maps holding at least
            `high_level_key` and `low_level_keys` (e.g. an `AxialResNetBackbone` pyramid).
        training: bool.

    Returns:
        `[batch, height, width, decoder_channels]` at the size of the last low-level feature.

    Example:

    >>> decoder = PanopticDeepLabDecoder(decoder_channels=128, low_level_channels=(32, 16))
    >>> features = {"res5": np.zeros((1, 5, 5, 64), "float32"),
    ...             "res3": np.zeros((1, 9, 9, 32), "float32"),
    ...             "res2": np.zeros((1, 17, 17, 16), "float32")}
    >>> tuple(decoder(features).shape)
    (1, 17, 17, 128)

    Reference:
        Cheng et al., "Panoptic-DeepLab", CVPR 2020; Wang et al., "Axial-DeepLab", ECCV 2020,
        Sec. 3 (https://arxiv.org/abs/2003.07853).
    """

    def __init__(
        self,
        decoder_channels=256,
        projection_channels=256,
        low_level_channels=(64, 32),
        high_level_key="res5",
        low_level_keys=("res3", "res2"),
        kernel_size=5,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        sync_batch_norm=False,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.decoder_channels = _checks.positive_int("decoder_channels", decoder_channels)
        self.projection_channels = _checks.positive_int("projection_channels",
                                                        projection_channels)
        self.low_level_channels = _checks.positive_ints("low_level_channels",
                                                        low_level_channels)
        self.high_level_key = _checks.string("high_level_key", high_level_key)
        self.low_level_keys = tuple(
            _checks.string(f"low_level_keys[{i}]", key) for i, key in enumerate(low_level_keys)
        )
        if len(self.low_level_keys) != len(self.low_level_channels):
            raise ValueError(
                "`low_level_keys` and `low_level_channels` must have the same length. Received: "
                f"low_level_keys={low_level_keys!r}, low_level_channels={low_level_channels!r}"
            )
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        _checks.set_batch_norm_settings(self, batch_norm_momentum, batch_norm_epsilon,
                                        sync_batch_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _conv_bn(self, prefix, filters, input_shape, depthwise=False):
        if depthwise:
            conv = keras.layers.DepthwiseConv2D(
                self.kernel_size, padding="same", use_bias=False,
                depthwise_initializer=self.kernel_initializer, name=f"{prefix}_conv",
                dtype=self.dtype_policy,
            )
        else:
            conv = keras.layers.Conv2D(
                filters, 1, use_bias=False, kernel_initializer=self.kernel_initializer,
                name=f"{prefix}_conv", dtype=self.dtype_policy,
            )
        conv.build(input_shape)
        output_shape = conv.compute_output_shape(input_shape)
        norm = _checks.batch_norm(self, f"{prefix}_batch_norm")
        norm.build(output_shape)
        return conv, norm

    def build(self, input_shape):
        shapes = _checks.feature_shapes(
            "PanopticDeepLabDecoder", input_shape, (self.high_level_key,) + self.low_level_keys
        )
        self.projection = self._conv_bn(
            "projection", self.projection_channels, shapes[self.high_level_key]
        )
        channels = self.projection_channels
        self.fusions = []
        for key, low_channels in zip(self.low_level_keys, self.low_level_channels):
            shape = shapes[key]
            low_level = self._conv_bn(f"{key}_projection", low_channels, shape)
            fused_shape = shape[:3] + (channels + low_channels,)
            depthwise = self._conv_bn(f"{key}_fusion_depthwise", None, fused_shape,
                                      depthwise=True)
            pointwise = self._conv_bn(f"{key}_fusion_pointwise", self.decoder_channels,
                                      fused_shape)
            self.fusions.append((key, low_level, depthwise, pointwise))
            channels = self.decoder_channels
        self.built = True

    @staticmethod
    def _apply(conv_bn, x, training):
        conv, norm = conv_bn
        return ops.relu(norm(conv(x), training=training))

    def call(self, inputs, training=None):
        x = self._apply(self.projection, inputs[self.high_level_key], training)
        for key, low_level, depthwise, pointwise in self.fusions:
            features = inputs[key]
            x = resize_bilinear_aligned(x, ops.shape(features)[1:3])
            x = ops.concatenate(
                [x, ops.cast(self._apply(low_level, features, training), x.dtype)], axis=-1
            )
            x = self._apply(depthwise, x, training)
            x = self._apply(pointwise, x, training)
        return x

    def compute_output_shape(self, input_shape):
        shapes = _checks.feature_shapes(
            "PanopticDeepLabDecoder", input_shape, (self.high_level_key,) + self.low_level_keys
        )
        return tuple(shapes[self.low_level_keys[-1]][:3]) + (self.decoder_channels,)

    def compute_madds(self, input_shape):
        """The 1x1 projections and the separable fusions (resizes, BN and ReLU are free)."""
        shapes = _checks.feature_shapes(
            "PanopticDeepLabDecoder", input_shape, (self.high_level_key,) + self.low_level_keys
        )
        batch, height, width, channels = shapes[self.high_level_key]
        total = batch * height * width * channels * self.projection_channels
        current = self.projection_channels
        for key, low_channels in zip(self.low_level_keys, self.low_level_channels):
            batch, height, width, channels = shapes[key]
            fused = current + low_channels
            total += batch * height * width * (
                channels * low_channels
                + self.kernel_size**2 * fused
                + fused * self.decoder_channels
            )
            current = self.decoder_channels
        return total

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "decoder_channels": self.decoder_channels,
                "projection_channels": self.projection_channels,
                "low_level_channels": list(self.low_level_channels),
                "high_level_key": self.high_level_key,
                "low_level_keys": list(self.low_level_keys),
                "kernel_size": self.kernel_size,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                **_checks.batch_norm_config(self),
            }
        )
        return config

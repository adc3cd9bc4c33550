"""A Panoptic-DeepLab prediction head: separable 5x5 conv + BN + ReLU, then a 1x1 conv."""

import keras
from keras import ops

from keras_axial.models import _checks


@keras.saving.register_keras_serializable(package="keras_axial")
class PanopticDeepLabHead(keras.layers.Layer):
    """Panoptic-DeepLab's prediction head (semantic, center heatmap or center offsets).

    A depthwise-separable convolution (depthwise `kernel_size` x `kernel_size` + BN + ReLU,
    pointwise 1x1 to `intermediate_channels` + BN + ReLU), then a 1x1 convolution with bias to
    `output_channels`, initialized with a truncated normal of standard deviation 0.01 (deeplab2).
    The last convolution computes in float32 under mixed precision: its outputs are logits,
    heatmaps and pixel offsets that losses and post-processing read in float32.

    Axial-DeepLab's heads: semantic 256 -> num_classes, center 32 -> 1, offsets 32 -> 2.

    Args:
        output_channels: int, channels of the prediction.
        intermediate_channels: int, channels of the separable convolution. Defaults to `256`.
        kernel_size: int, depthwise kernel size. Defaults to `5`.
        batch_norm_momentum: float. Defaults to `0.99`.
        batch_norm_epsilon: float. Defaults to `1e-3`.
        sync_batch_norm: bool. Defaults to `False`.
        kernel_initializer: initializer of the separable convolution. Defaults to
            `"he_normal"`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `[batch, height, width, channels]` decoder features.
        training: bool.

    Returns:
        float32 `[batch, height, width, output_channels]`.

    Example:

    >>> head = PanopticDeepLabHead(output_channels=2, intermediate_channels=32)
    >>> tuple(head(np.zeros((1, 17, 17, 128), "float32")).shape)
    (1, 17, 17, 2)

    Reference:
        Cheng et al., "Panoptic-DeepLab", CVPR 2020, Sec. 3.
    """

    def __init__(
        self,
        output_channels,
        intermediate_channels=256,
        kernel_size=5,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        sync_batch_norm=False,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.output_channels = _checks.positive_int("output_channels", output_channels)
        self.intermediate_channels = _checks.positive_int("intermediate_channels",
                                                          intermediate_channels)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        _checks.set_batch_norm_settings(self, batch_norm_momentum, batch_norm_epsilon,
                                        sync_batch_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError("PanopticDeepLabHead expects [batch, height, width, channels] "
                             f"inputs with known channels. Received: input_shape={input_shape}")
        self.depthwise_conv = keras.layers.DepthwiseConv2D(
            self.kernel_size, padding="same", use_bias=False,
            depthwise_initializer=self.kernel_initializer, name="depthwise_conv",
            dtype=self.dtype_policy,
        )
        self.depthwise_conv.build(input_shape)
        self.depthwise_batch_norm = _checks.batch_norm(self, "depthwise_batch_norm")
        self.depthwise_batch_norm.build(input_shape)
        self.pointwise_conv = keras.layers.Conv2D(
            self.intermediate_channels, 1, use_bias=False,
            kernel_initializer=self.kernel_initializer, name="pointwise_conv",
            dtype=self.dtype_policy,
        )
        self.pointwise_conv.build(input_shape)
        intermediate_shape = input_shape[:3] + (self.intermediate_channels,)
        self.pointwise_batch_norm = _checks.batch_norm(self, "pointwise_batch_norm")
        self.pointwise_batch_norm.build(intermediate_shape)
        self.output_conv = keras.layers.Conv2D(
            self.output_channels, 1, use_bias=True,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
            name="output_conv",
            # float32 (not the mixed policy): predictions are read in float32.
            dtype="float32",
        )
        self.output_conv.build(intermediate_shape)
        self.built = True

    def call(self, inputs, training=None):
        x = ops.relu(self.depthwise_batch_norm(self.depthwise_conv(inputs), training=training))
        x = ops.relu(self.pointwise_batch_norm(self.pointwise_conv(x), training=training))
        return self.output_conv(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:3] + (self.output_channels,)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype="float32")

    def compute_madds(self, input_shape):
        """Depthwise, pointwise and output convolutions (BN, ReLU and bias are free)."""
        batch, height, width, channels = tuple(input_shape)
        return batch * height * width * (
            self.kernel_size**2 * channels
            + channels * self.intermediate_channels
            + self.intermediate_channels * self.output_channels
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_channels": self.output_channels,
                "intermediate_channels": self.intermediate_channels,
                "kernel_size": self.kernel_size,
                **_checks.batch_norm_config(self),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config

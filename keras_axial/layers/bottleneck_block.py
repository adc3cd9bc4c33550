"""The convolutional ResNet bottleneck, for hybrid (conv + axial) stages."""

import keras
from keras import ops

from keras_axial.layers import _common
from keras_axial.layers._residual import ResidualBlock


@keras.saving.register_keras_serializable(package="keras_axial")
class BottleneckBlock(ResidualBlock):
    """ResNet-50 bottleneck (1x1, kxk, 1x1) with the same interface as `AxialBlock`.

        x        = relu(inputs)                          (if activate_input)
        branch   = relu(BN(conv1 1x1 -> f * bottleneck_expansion [f]))
        branch   = relu(BN(conv2 kxk, strides, dilation -> f * bottleneck_expansion))
        branch   = BN_gamma0(conv3 1x1 -> f * output_expansion [4f])
        shortcut = BN(conv 1x1, stride)(x) if channels or stride change, else x
        outputs  = drop_path(branch) + shortcut           (no activation)

    Like `AxialBlock` it consumes and returns pre-activation sums, so both kinds of block chain
    freely inside one stage. Convolutions use 'same' padding (on odd `16k + 1` inputs a strided
    3x3 convolution samples positions 0, 2, 4, ... like the strided shortcut).

    Args:
        filters: int, the base width `f`.
        strides: int >= 1, stride of the kxk convolution and the shortcut. Defaults to `1`.
        kernel_size: int, size of the middle convolution. Defaults to `3`.
        dilation_rate: int, atrous rate of the middle convolution (output stride 16 models
            use 2 in the last stage). Defaults to `1`.
        bottleneck_expansion: width of conv1/conv2 over `f`. Defaults to `1`.
        output_expansion: block output channels over `f`. Defaults to `4`.
        drop_path_rate: float in [0, 1). Defaults to `0.0`.
        use_projection_shortcut: None (project when channels or stride change), True or False.
            Defaults to `None`.
        activate_input: bool, apply ReLU to the inputs first. Defaults to `True`.
        batch_norm_momentum: float. Defaults to `0.99`.
        batch_norm_epsilon: float. Defaults to `1e-3`.
        sync_batch_norm: bool. Defaults to `False`.
        kernel_initializer: convolution initializer. Defaults to `"he_normal"`.
        kernel_regularizer: convolution regularizer. Defaults to `None`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[batch, height, width, channels]` (a pre-activation sum).
        training: bool.

    Returns:
        `[batch, ceil(height / strides), ceil(width / strides), filters * output_expansion]`,
        not activated.

    Example:

    >>> block = BottleneckBlock(64, strides=2)
    >>> tuple(block(np.zeros((1, 33, 33, 128), "float32")).shape)
    (1, 17, 17, 256)

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
    """

    def __init__(
        self,
        filters,
        strides=1,
        kernel_size=3,
        dilation_rate=1,
        bottleneck_expansion=1,
        output_expansion=4,
        drop_path_rate=0.0,
        use_projection_shortcut=None,
        activate_input=True,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        sync_batch_norm=False,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(strides, drop_path_rate, use_projection_shortcut, activate_input,
                         batch_norm_momentum, batch_norm_epsilon, sync_batch_norm,
                         kernel_initializer, kernel_regularizer, **kwargs)
        self.filters = _common.check_int("filters", filters, minimum=1)
        self.kernel_size = _common.check_int("kernel_size", kernel_size, minimum=1)
        self.dilation_rate = _common.check_int("dilation_rate", dilation_rate, minimum=1)
        if self.dilation_rate > 1 and self.strides > 1:
            raise ValueError("`dilation_rate` > 1 and `strides` > 1 cannot be combined. "
                             f"Received: strides={strides}, dilation_rate={dilation_rate}")
        self.bottleneck_expansion = bottleneck_expansion
        self.output_expansion = output_expansion
        self.bottleneck_filters = _common.scaled_channels("bottleneck_expansion", filters,
                                                          bottleneck_expansion)
        self.output_filters = _common.scaled_channels("output_expansion", filters,
                                                      output_expansion)

    def _build_branch(self, input_shape):
        batch, height, width, _ = input_shape
        middle = (batch, height, width, self.bottleneck_filters)
        self.conv1 = self._conv("conv1", self.bottleneck_filters)
        self.conv1.build(input_shape)
        self.conv1_batch_norm = self._batch_norm("conv1_batch_norm")
        self.conv1_batch_norm.build(middle)
        self.conv2 = self._conv("conv2", self.bottleneck_filters, self.kernel_size, self.strides,
                                self.dilation_rate)
        self.conv2.build(middle)
        strided = self.conv2.compute_output_shape(middle)
        self.conv2_batch_norm = self._batch_norm("conv2_batch_norm")
        self.conv2_batch_norm.build(strided)
        self.conv3 = self._conv("conv3", self.output_filters)
        self.conv3.build(strided)
        output_shape = tuple(strided[:3]) + (self.output_filters,)
        self.conv3_batch_norm = self._batch_norm("conv3_batch_norm", gamma_initializer="zeros")
        self.conv3_batch_norm.build(output_shape)
        return output_shape

    def _branch(self, x, training):
        x = ops.relu(self.conv1_batch_norm(self.conv1(x), training=training))
        x = ops.relu(self.conv2_batch_norm(self.conv2(x), training=training))
        return self.conv3_batch_norm(self.conv3(x), training=training)

    def compute_madds(self, input_shape):
        """conv1 + conv2 + conv3 + projection shortcut (BN/ReLU not counted)."""
        batch, height, width, channels = tuple(input_shape)
        _, out_h, out_w, _ = self.compute_output_shape(input_shape)
        width_b = self.bottleneck_filters
        return (batch * height * width * channels * width_b
                + batch * out_h * out_w * self.kernel_size ** 2 * width_b * width_b
                + batch * out_h * out_w * width_b * self.output_filters
                + self._projection_madds(tuple(input_shape)))

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dilation_rate": self.dilation_rate,
            "bottleneck_expansion": self.bottleneck_expansion,
            "output_expansion": self.output_expansion,
        })
        return config

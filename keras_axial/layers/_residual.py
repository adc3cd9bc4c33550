"""Private base of the residual blocks: shortcut, drop path, input activation, config."""

import keras
from keras import ops

from keras_axial.layers import _common
from keras_axial.layers.axial_attention_2d import subsample_axis
from keras_axial.layers.drop_path import DropPath


class ResidualBlock(keras.layers.Layer):
    """Shared part of `AxialBlock` and `BottleneckBlock` (not a public layer).

    Subclasses implement `_build_branch(input_shape) -> output_shape` and
    `_branch(x, training)`, and set `self.output_filters`.
    """

    def __init__(self, strides, drop_path_rate, use_projection_shortcut, activate_input,
                 batch_norm_momentum, batch_norm_epsilon, sync_batch_norm, kernel_initializer,
                 kernel_regularizer, **kwargs):
        super().__init__(**kwargs)
        self.strides = _common.check_int("strides", strides, minimum=1)
        self.drop_path_rate = _common.check_float("drop_path_rate", drop_path_rate, 0.0, 1.0,
                                                  max_inclusive=False)
        if use_projection_shortcut is not None:
            _common.check_bool("use_projection_shortcut", use_projection_shortcut)
        self.use_projection_shortcut = use_projection_shortcut
        self.activate_input = _common.check_bool("activate_input", activate_input)
        _common.check_batch_norm_args(batch_norm_momentum, batch_norm_epsilon, sync_batch_norm)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.sync_batch_norm = sync_batch_norm
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    # Helpers for subclasses ---------------------------------------------------------------

    def _conv(self, name, filters, kernel_size=1, strides=1, dilation_rate=1):
        return keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding="same", dilation_rate=dilation_rate,
            use_bias=False, kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer, name=name, dtype=self.dtype_policy)

    def _batch_norm(self, name, gamma_initializer="ones"):
        return _common.batch_norm(name, self.batch_norm_momentum, self.batch_norm_epsilon,
                                  self.sync_batch_norm, gamma_initializer=gamma_initializer,
                                  dtype=self.dtype_policy)

    def _subsample_identity(self, x):
        x = subsample_axis(x, 1, self.strides, "slice")
        return subsample_axis(x, 2, self.strides, "slice")

    # Build / call ------------------------------------------------------------------------

    def _needs_projection(self, channels):
        if self.use_projection_shortcut is not None:
            return self.use_projection_shortcut
        return channels != self.output_filters or self.strides != 1

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} expects [batch, height, width, channels] "
                             f"inputs with known channels. Received: input_shape={input_shape}")
        output_shape = self._build_branch(input_shape)
        self.projection = self._needs_projection(input_shape[-1])
        if not self.projection and input_shape[-1] != self.output_filters:
            raise ValueError(
                "`use_projection_shortcut=False` needs as many input channels as output "
                f"channels. Received: {input_shape[-1]} input channels, "
                f"{self.output_filters} output channels")
        if self.projection:
            self.shortcut_conv = self._conv("shortcut_conv", self.output_filters,
                                            strides=self.strides)
            self.shortcut_conv.build(input_shape)
            self.shortcut_batch_norm = self._batch_norm("shortcut_batch_norm")
            self.shortcut_batch_norm.build(output_shape)
        self.drop_path = DropPath(self.drop_path_rate, name="drop_path", dtype=self.dtype_policy)
        self.drop_path.build(output_shape)

    def call(self, inputs, training=None):
        x = ops.relu(inputs) if self.activate_input else inputs
        if self.projection:
            shortcut = self.shortcut_batch_norm(self.shortcut_conv(x), training=training)
        else:
            shortcut = self._subsample_identity(x)
        branch = self._branch(x, training)
        return self.drop_path(branch, training=training) + shortcut

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = tuple(input_shape)
        return (batch, _common.conv_output_length(height, self.strides),
                _common.conv_output_length(width, self.strides), self.output_filters)

    def _projection_madds(self, input_shape):
        if not self._needs_projection(input_shape[-1]):
            return 0
        batch, height, width, channels = input_shape
        out_h = _common.conv_output_length(height, self.strides)
        out_w = _common.conv_output_length(width, self.strides)
        return batch * out_h * out_w * channels * self.output_filters

    def get_config(self):
        config = super().get_config()
        config.update({
            "strides": self.strides,
            "drop_path_rate": self.drop_path_rate,
            "use_projection_shortcut": self.use_projection_shortcut,
            "activate_input": self.activate_input,
            "batch_norm_momentum": self.batch_norm_momentum,
            "batch_norm_epsilon": self.batch_norm_epsilon,
            "sync_batch_norm": self.sync_batch_norm,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        })
        return config

"""Private base of the convolution stems: conv + BN + ReLU units and an optional max-pool."""

import keras
from keras import ops

from keras_axial.layers import _common


class ConvolutionStem(keras.layers.Layer):
    """Runs `(name, filters, kernel_size, strides)` conv-BN-ReLU units, then a 3x3/2 max-pool.

    Subclasses set `self.units` in `__init__` before calling `_finish_init`.
    """

    def _finish_init(self, use_max_pool, batch_norm_momentum, batch_norm_epsilon,
                     sync_batch_norm, kernel_initializer, kernel_regularizer):
        self.use_max_pool = _common.check_bool("use_max_pool", use_max_pool)
        _common.check_batch_norm_args(batch_norm_momentum, batch_norm_epsilon, sync_batch_norm)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.sync_batch_norm = sync_batch_norm
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != 4 or shape[-1] is None:
            raise ValueError(f"{type(self).__name__} expects [batch, height, width, channels] "
                             f"inputs with known channels. Received: input_shape={shape}")
        self.convolutions = []
        for name, filters, kernel_size, strides in self.units:
            conv = keras.layers.Conv2D(
                filters, kernel_size, strides=strides, padding="same", use_bias=False,
                kernel_initializer=self.kernel_initializer,
                kernel_regularizer=self.kernel_regularizer, name=name, dtype=self.dtype_policy)
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm = _common.batch_norm(f"{name}_batch_norm", self.batch_norm_momentum,
                                      self.batch_norm_epsilon, self.sync_batch_norm,
                                      dtype=self.dtype_policy)
            norm.build(shape)
            setattr(self, name, conv)
            setattr(self, f"{name}_batch_norm", norm)
            self.convolutions.append((conv, norm))
        if self.use_max_pool:
            self.max_pool = keras.layers.MaxPooling2D(3, strides=2, padding="same",
                                                      name="max_pool", dtype=self.dtype_policy)

    def call(self, inputs, training=None):
        x = inputs
        for conv, norm in self.convolutions:
            x = ops.relu(norm(conv(x), training=training))
        if self.use_max_pool:
            x = self.max_pool(x)
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = tuple(input_shape)
        return (batch, self._reduce(height), self._reduce(width), self.units[-1][1])

    def _reduce(self, length):
        for _, _, _, strides in self.units:
            length = _common.conv_output_length(length, strides)
        if self.use_max_pool:
            length = _common.conv_output_length(length, 2)
        return length

    def compute_madds(self, input_shape):
        """Convolutions only (BN, ReLU and max-pool are not counted)."""
        batch, height, width, channels = tuple(input_shape)
        total = 0
        for _, filters, kernel_size, strides in self.units:
            height = _common.conv_output_length(height, strides)
            width = _common.conv_output_length(width, strides)
            total += batch * height * width * kernel_size ** 2 * channels * filters
            channels = filters
        return total

    def get_config(self):
        config = super().get_config()
        config.update({
            "use_max_pool": self.use_max_pool,
            "batch_norm_momentum": self.batch_norm_momentum,
            "batch_norm_epsilon": self.batch_norm_epsilon,
            "sync_batch_norm": self.sync_batch_norm,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        })
        return config

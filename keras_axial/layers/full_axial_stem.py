"""The stand-alone ("Full Axial-ResNet") stem: axial bottleneck blocks instead of convolutions."""

import keras
from keras import ops

from keras_axial.layers import _common
from keras_axial.layers.axial_attention_2d import STRIDE_MODES
from keras_axial.layers.axial_block import AxialBlock


@keras.saving.register_keras_serializable(package="keras_axial")
class FullAxialStem(keras.layers.Layer):
    """`num_blocks` axial bottleneck blocks, the first with stride `strides`, then ReLU.

    The paper's stand-alone Axial-ResNets replace the convolutional stem with three
    axial-attention bottleneck blocks, the first strided, with span 15 everywhere (Sec. 4.1).
    The paper does not give their widths; `filters` (the blocks' base width, output
    `filters * output_expansion` channels) and `span` are arguments. The first block reads the
    normalized image directly (no input ReLU). With `use_max_pool=True` (default) a 3x3
    stride-2 max-pool follows, so the stem has output stride 4 like `ConvStem` and is a drop-in
    replacement for it.

    Args:
        filters: int, base width of the blocks. Defaults to `16` (64 output channels).
        num_blocks: int, number of blocks. Defaults to `3`.
        strides: int, stride of the first block. Defaults to `2`.
        span: None or odd int, axial span of every block. Defaults to `15`.
        max_span: None or int, relative-table size (see `AxialAttention`). Defaults to `None`.
        num_heads: int. Defaults to `8`.
        stride_mode: `"pool"` or `"slice"`. Defaults to `"pool"`.
        bottleneck_expansion, key_expansion, value_expansion, output_expansion: as
            `AxialBlock`. Default to `2, 1, 2, 4`.
        use_max_pool: bool, end with a 3x3 stride-2 max-pool. Defaults to `True`.
        drop_path_rate: float in [0, 1), for every block. Defaults to `0.0`.
        batch_norm_momentum: float. Defaults to `0.99`.
        batch_norm_epsilon: float. Defaults to `1e-3`.
        sync_batch_norm: bool. Defaults to `False`.
        query_block_size: None or int, speed knob of local attention. Defaults to `None`.
        kernel_initializer: convolution initializer. Defaults to `"he_normal"`.
        kernel_regularizer: Defaults to `None`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[batch, height, width, channels]` (normalized images).
        training: bool.

    Returns:
        `[batch, height / (strides * 2), width / (strides * 2), filters * output_expansion]`
        (rounded up; without the max-pool `/ strides`), ReLU-activated.

    Example:

    >>> stem = FullAxialStem(filters=8, span=7)
    >>> tuple(stem(np.zeros((1, 32, 32, 3), "float32")).shape)
    (1, 8, 8, 32)

    Reference:
        Wang et al., "Axial-DeepLab", ECCV 2020, Sec. 4.1 (https://arxiv.org/abs/2003.07853).
    """

    def __init__(self, filters=16, num_blocks=3, strides=2, span=15, max_span=None, num_heads=8,
                 stride_mode="pool", bottleneck_expansion=2, key_expansion=1, value_expansion=2,
                 output_expansion=4, use_max_pool=True, drop_path_rate=0.0,
                 batch_norm_momentum=0.99, batch_norm_epsilon=1e-3, sync_batch_norm=False,
                 query_block_size=None, kernel_initializer="he_normal", kernel_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_blocks = _common.check_int("num_blocks", num_blocks, minimum=1)
        self.use_max_pool = _common.check_bool("use_max_pool", use_max_pool)
        self.strides = _common.check_int("strides", strides, minimum=1)
        _common.check_choice("stride_mode", stride_mode, STRIDE_MODES)
        self.block_config = {
            "filters": filters,
            "span": span,
            "max_span": max_span,
            "num_heads": num_heads,
            "stride_mode": stride_mode,
            "bottleneck_expansion": bottleneck_expansion,
            "key_expansion": key_expansion,
            "value_expansion": value_expansion,
            "output_expansion": output_expansion,
            "drop_path_rate": drop_path_rate,
            "batch_norm_momentum": batch_norm_momentum,
            "batch_norm_epsilon": batch_norm_epsilon,
            "sync_batch_norm": sync_batch_norm,
            "query_block_size": query_block_size,
            "kernel_initializer": kernel_initializer,
            "kernel_regularizer": kernel_regularizer,
        }
        self.blocks = [self._make_block(i) for i in range(self.num_blocks)]  # validates too

    def _make_block(self, index):
        return AxialBlock(strides=self.strides if index == 0 else 1,
                          activate_input=index > 0, name=f"block{index + 1}",
                          dtype=self.dtype_policy, **self.block_config)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != 4 or shape[-1] is None:
            raise ValueError("FullAxialStem expects [batch, height, width, channels] inputs "
                             f"with known channels. Received: input_shape={shape}")
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        if self.use_max_pool:
            self.max_pool = keras.layers.MaxPooling2D(3, strides=2, padding="same",
                                                      name="max_pool", dtype=self.dtype_policy)

    def call(self, inputs, training=None):
        x = inputs
        for block in self.blocks:
            x = block(x, training=training)
        x = ops.relu(x)
        if self.use_max_pool:
            x = self.max_pool(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            shape = block.compute_output_shape(shape)
        if self.use_max_pool:
            shape = (shape[0], _common.conv_output_length(shape[1], 2),
                     _common.conv_output_length(shape[2], 2), shape[3])
        return shape

    def compute_madds(self, input_shape):
        """Sum of the blocks' multiply-adds."""
        shape = tuple(input_shape)
        total = 0
        for block in self.blocks:
            total += block.compute_madds(shape)
            shape = block.compute_output_shape(shape)
        return total

    def get_config(self):
        config = super().get_config()
        config.update(self.block_config)
        config.update({"num_blocks": self.num_blocks, "strides": self.strides,
                       "use_max_pool": self.use_max_pool})
        config["kernel_initializer"] = keras.initializers.serialize(
            keras.initializers.get(config["kernel_initializer"]))
        config["kernel_regularizer"] = keras.regularizers.serialize(
            keras.regularizers.get(config["kernel_regularizer"]))
        return config

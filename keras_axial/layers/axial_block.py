"""The axial-attention bottleneck block (Axial-DeepLab Fig. 2)."""

import keras
from keras import ops

from keras_axial.layers import _common
from keras_axial.layers._residual import ResidualBlock
from keras_axial.layers.axial_attention_2d import STRIDE_MODES, AxialAttention2D, subsample_axis


@keras.saving.register_keras_serializable(package="keras_axial")
class AxialBlock(ResidualBlock):
    """ResNet bottleneck whose 3x3 convolution is height-axis then width-axis attention.

    With `f = filters` (paper defaults in brackets):

        x        = relu(inputs)                         (if activate_input)
        branch   = relu(BN(conv1 1x1 -> f * bottleneck_expansion [2f]))
        branch   = AxialAttention2D(keys f * key_expansion [f], values f * value_expansion [2f],
                                    strides)            (height, then width)
        branch   = BN_gamma0(conv3 1x1 -> f * output_expansion [4f])(relu(branch))
        shortcut = BN(conv 1x1, stride)(x) if channels or stride change, else x
        outputs  = drop_path(branch) + shortcut          (no activation)

    The block consumes and returns pre-activation sums, as deeplab2's `AxialBlock` (whose
    weights `keras_axial.convert.deeplab2` imports): it applies ReLU to its input, and the
    caller applies ReLU to the last block's output where an activated feature is needed. A
    chain of such blocks computes exactly a post-activation ResNet. The last batch norm starts
    with gamma = 0 so that every block starts as its shortcut (Goyal et al. 2017).

    Args:
        filters: int, the base width `f`.
        strides: int >= 1, subsampling of the block (inside the attention, after each axis;
            and in the projection shortcut). Defaults to `1`.
        num_heads: int. Defaults to `8`.
        span: None (global) or odd int, the axial span. Defaults to `None`.
        max_span: None or int, relative tables hold `2 * max_span - 1` rows (see
            `AxialAttention`). Defaults to `None`.
        stride_mode: `"pool"` (paper-style average pooling) or `"slice"` (deeplab2). Defaults to
            `"pool"`.
        bottleneck_expansion: conv1 width over `f`. Defaults to `2`.
        key_expansion: total key depth over `f`. Defaults to `1`.
        value_expansion: total value depth over `f`. Defaults to `2`.
        output_expansion: block output channels over `f`. Defaults to `4`.
        drop_path_rate: float in [0, 1), stochastic depth of the residual branch.
            Defaults to `0.0`.
        use_projection_shortcut: None (project when channels or stride change), True or False.
            Defaults to `None`.
        activate_input: bool, apply ReLU to the inputs first (False for a block that reads raw
            images, e.g. the first block of `FullAxialStem`). Defaults to `True`.
        use_query_rpe, use_key_rpe, use_content_similarity, retrieve_value_rpe,
            retrieve_value_content: attention terms (ablations). Default to `True`.
        batch_norm_momentum: float. Defaults to `0.99`.
        batch_norm_epsilon: float. Defaults to `1e-3`.
        sync_batch_norm: bool. Defaults to `False`.
        query_block_size: None or int, speed knob of local attention. Defaults to `None`.
        kernel_initializer: initializer of the 1x1 convolutions. Defaults to `"he_normal"`.
        kernel_regularizer: regularizer of the convolution and projection kernels.
            Defaults to `None`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[batch, height, width, channels]` (a pre-activation sum).
        training: bool.

    Returns:
        `[batch, ceil(height / strides), ceil(width / strides), filters * output_expansion]`,
        not activated.

    Example:

    >>> block = AxialBlock(32, strides=2, span=65)
    >>> tuple(block(np.zeros((1, 33, 33, 64), "float32")).shape)
    (1, 17, 17, 128)

    Reference:
        Wang et al., "Axial-DeepLab", ECCV 2020, Sec. 3.2, Fig. 2
        (https://arxiv.org/abs/2003.07853).
    """

    def __init__(
        self,
        filters,
        strides=1,
        num_heads=8,
        span=None,
        max_span=None,
        stride_mode="pool",
        bottleneck_expansion=2,
        key_expansion=1,
        value_expansion=2,
        output_expansion=4,
        drop_path_rate=0.0,
        use_projection_shortcut=None,
        activate_input=True,
        use_query_rpe=True,
        use_key_rpe=True,
        use_content_similarity=True,
        retrieve_value_rpe=True,
        retrieve_value_content=True,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        sync_batch_norm=False,
        query_block_size=None,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(strides, drop_path_rate, use_projection_shortcut, activate_input,
                         batch_norm_momentum, batch_norm_epsilon, sync_batch_norm,
                         kernel_initializer, kernel_regularizer, **kwargs)
        self.filters = _common.check_int("filters", filters, minimum=1)
        self.stride_mode = _common.check_choice("stride_mode", stride_mode, STRIDE_MODES)
        self.bottleneck_expansion = bottleneck_expansion
        self.key_expansion = key_expansion
        self.value_expansion = value_expansion
        self.output_expansion = output_expansion
        self.bottleneck_filters = _common.scaled_channels("bottleneck_expansion", filters,
                                                          bottleneck_expansion)
        self.key_depth = _common.scaled_channels("key_expansion", filters, key_expansion)
        self.value_depth = _common.scaled_channels("value_expansion", filters, value_expansion)
        self.output_filters = _common.scaled_channels("output_expansion", filters,
                                                      output_expansion)
        self.attention_config = {
            "num_heads": num_heads,
            "span": span,
            "max_span": max_span,
            "use_query_rpe": use_query_rpe,
            "use_key_rpe": use_key_rpe,
            "use_content_similarity": use_content_similarity,
            "retrieve_value_rpe": retrieve_value_rpe,
            "retrieve_value_content": retrieve_value_content,
            "query_block_size": query_block_size,
        }
        self._make_attention()  # validates the attention arguments now

    def _make_attention(self):
        return AxialAttention2D(
            self.key_depth, self.value_depth, strides=self.strides, stride_mode=self.stride_mode,
            batch_norm_momentum=self.batch_norm_momentum,
            batch_norm_epsilon=self.batch_norm_epsilon, sync_batch_norm=self.sync_batch_norm,
            kernel_regularizer=self.kernel_regularizer, name="attention",
            dtype=self.dtype_policy, **self.attention_config)

    def _subsample_identity(self, x):
        x = subsample_axis(x, 1, self.strides, self.stride_mode)
        return subsample_axis(x, 2, self.strides, self.stride_mode)

    def _build_branch(self, input_shape):
        batch, height, width, _ = input_shape
        self.conv1 = self._conv("conv1", self.bottleneck_filters)
        self.conv1.build(input_shape)
        middle = (batch, height, width, self.bottleneck_filters)
        self.conv1_batch_norm = self._batch_norm("conv1_batch_norm")
        self.conv1_batch_norm.build(middle)
        self.attention = self._make_attention()
        self.attention.build(middle)
        attended = self.attention.compute_output_shape(middle)
        self.conv3 = self._conv("conv3", self.output_filters)
        self.conv3.build(attended)
        output_shape = attended[:3] + (self.output_filters,)
        self.conv3_batch_norm = self._batch_norm("conv3_batch_norm", gamma_initializer="zeros")
        self.conv3_batch_norm.build(output_shape)
        return output_shape

    def _branch(self, x, training):
        x = ops.relu(self.conv1_batch_norm(self.conv1(x), training=training))
        x = ops.relu(self.attention(x, training=training))
        return self.conv3_batch_norm(self.conv3(x), training=training)

    def compute_madds(self, input_shape):
        """conv1 + both axial layers + conv3 + projection shortcut (BN/ReLU not counted)."""
        batch, height, width, channels = tuple(input_shape)
        attention = self.attention if self.built else self._make_attention()
        middle = (batch, height, width, self.bottleneck_filters)
        _, out_h, out_w, _ = self.compute_output_shape(input_shape)
        return (batch * height * width * channels * self.bottleneck_filters
                + attention.compute_madds(middle)
                + batch * out_h * out_w * self.value_depth * self.output_filters
                + self._projection_madds(tuple(input_shape)))

    def get_config(self):
        config = super().get_config()
        config.update(self.attention_config)
        config.update({
            "filters": self.filters,
            "stride_mode": self.stride_mode,
            "bottleneck_expansion": self.bottleneck_expansion,
            "key_expansion": self.key_expansion,
            "value_expansion": self.value_expansion,
            "output_expansion": self.output_expansion,
        })
        return config

"""Height-axis then width-axis attention, with optional striding after each axis."""

import keras
from keras import ops

from keras_axial.layers import _common
from keras_axial.layers.axial_attention import AxialAttention

STRIDE_MODES = ("pool", "slice")


def subsample_axis(x, axis, strides, stride_mode):
    """Strides one spatial axis of `[batch, height, width, channels]`: `ceil(n / strides)` out.

    `"pool"`: average over non-overlapping windows of `strides` positions starting at 0 (the
    paper's PyTorch code pools 2x2 after the block's attention); a last, partial window averages
    only the positions inside the image (odd `16k + 1` sizes give `8k + 1`). `"slice"`: keep
    positions `0, strides, 2 * strides, ...` (deeplab2).
    """
    if strides == 1:
        return x
    if stride_mode == "slice":
        return x[:, ::strides] if axis == 1 else x[:, :, ::strides]
    return _average_windows(x, axis, strides)


def _average_windows(x, axis, strides):
    """Mean over windows `[i * strides, (i + 1) * strides)` of a spatial axis (1 or 2)."""
    shape = ops.shape(x)
    length = shape[axis]
    static_length = x.shape[axis]
    if static_length is not None:
        windows = -(-static_length // strides)
        padding = windows * strides - static_length
    else:
        windows = (length + strides - 1) // strides
        padding = windows * strides - length
    if static_length is None or padding:
        zeros = ops.zeros_like(x[:, :1] if axis == 1 else x[:, :, :1])
        x = ops.concatenate([x, ops.repeat(zeros, padding, axis=axis)], axis=axis)
    if axis == 1:
        x = ops.reshape(x, (shape[0], windows, strides, shape[2], shape[3]))
    else:
        x = ops.reshape(x, (shape[0], shape[1], windows, strides, shape[3]))
    total = ops.sum(x, axis=axis + 1)
    # The last window may hold fewer than `strides` positions.
    counts = ops.minimum(strides, length - ops.arange(windows) * strides)
    counts = ops.reshape(ops.cast(counts, total.dtype), (1, -1, 1, 1) if axis == 1
                         else (1, 1, -1, 1))
    return total / counts


@keras.saving.register_keras_serializable(package="keras_axial")
class AxialAttention2D(keras.layers.Layer):
    """Axial attention over a 2D map: height-axis layer, then width-axis layer.

    No activation or normalization between the two axes besides each layer's own batch norms
    (paper Fig. 2, deeplab2). With `strides > 1` the map is subsampled along each axis right
    after the layer that attends along it, as the paper says ("optional striding is performed
    on each axis after the corresponding axial-attention layer"), so the width layer already
    runs on the strided rows.

    - `stride_mode="pool"` (default, paper-style): average pooling with window and stride
      `strides` along the axis, windows starting at position 0; for lengths not divisible by
      `strides` the last window averages the positions that exist (output `ceil(n / s)`, so
      `129 -> 65` like a strided 'same' convolution).
    - `stride_mode="slice"` (deeplab2): keep rows `::strides` after the height layer and
      columns `::strides` after the width layer.

    Args:
        total_key_depth: int, total query/key depth of each axial layer.
        total_value_depth: int, total value depth (output channels) of each axial layer.
        num_heads: int. Defaults to `8`.
        span: None (global) or odd int, local span of both layers. Defaults to `None`.
        max_span: None or int, relative-table size of both layers (see `AxialAttention`).
            Defaults to `None`.
        strides: int >= 1, subsampling of each axis. Defaults to `1`.
        stride_mode: `"pool"` or `"slice"`. Defaults to `"pool"`.
        use_query_rpe, use_key_rpe, use_content_similarity, retrieve_value_rpe,
            retrieve_value_content: bools passed to both layers. Default to `True`.
        batch_norm_momentum: float. Defaults to `0.99`.
        batch_norm_epsilon: float. Defaults to `1e-3`.
        sync_batch_norm: bool. Defaults to `False`.
        query_block_size: None or int, speed knob of local attention. Defaults to `None`.
        kernel_initializer: projection initializer, `None` for deeplab2's. Defaults to `None`.
        rpe_initializer: table initializer, `None` for deeplab2's. Defaults to `None`.
        kernel_regularizer: projection regularizer. Defaults to `None`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[batch, height, width, channels]`, any (also unknown) height and width.
        training: bool.

    Returns:
        `[batch, ceil(height / strides), ceil(width / strides), total_value_depth]`.

    Example:

    >>> layer = AxialAttention2D(64, 128, span=65, strides=2)
    >>> tuple(layer(np.zeros((1, 33, 17, 128), "float32")).shape)
    (1, 17, 9, 128)

    Reference:
        Wang et al., "Axial-DeepLab", ECCV 2020, Sec. 3.2 (https://arxiv.org/abs/2003.07853).
    """

    def __init__(
        self,
        total_key_depth,
        total_value_depth,
        num_heads=8,
        span=None,
        max_span=None,
        strides=1,
        stride_mode="pool",
        use_query_rpe=True,
        use_key_rpe=True,
        use_content_similarity=True,
        retrieve_value_rpe=True,
        retrieve_value_content=True,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        sync_batch_norm=False,
        query_block_size=None,
        kernel_initializer=None,
        rpe_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.strides = _common.check_int("strides", strides, minimum=1)
        self.stride_mode = _common.check_choice("stride_mode", stride_mode, STRIDE_MODES)
        self.attention_config = {
            "total_key_depth": total_key_depth,
            "total_value_depth": total_value_depth,
            "num_heads": num_heads,
            "span": span,
            "max_span": max_span,
            "use_query_rpe": use_query_rpe,
            "use_key_rpe": use_key_rpe,
            "use_content_similarity": use_content_similarity,
            "retrieve_value_rpe": retrieve_value_rpe,
            "retrieve_value_content": retrieve_value_content,
            "batch_norm_momentum": batch_norm_momentum,
            "batch_norm_epsilon": batch_norm_epsilon,
            "sync_batch_norm": sync_batch_norm,
            "query_block_size": query_block_size,
            "kernel_initializer": kernel_initializer,
            "rpe_initializer": rpe_initializer,
            "kernel_regularizer": kernel_regularizer,
        }
        # Validates every argument now, with AxialAttention's messages.
        self._make_attention("height_attention", 1)
        self.total_value_depth = total_value_depth

    def _make_attention(self, name, axis):
        return AxialAttention(axis=axis, name=name, dtype=self.dtype_policy,
                              **self.attention_config)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError("AxialAttention2D expects [batch, height, width, channels] inputs. "
                             f"Received: input_shape={input_shape}")
        self.height_attention = self._make_attention("height_attention", 1)
        self.height_attention.build(input_shape)
        middle = self._after_height(input_shape)
        self.width_attention = self._make_attention("width_attention", 2)
        self.width_attention.build(middle)

    def _after_height(self, input_shape):
        batch, height, width, _ = input_shape
        return (batch, _common.conv_output_length(height, self.strides), width,
                self.total_value_depth)

    def call(self, inputs, training=None):
        x = self.height_attention(inputs, training=training)
        x = subsample_axis(x, 1, self.strides, self.stride_mode)
        x = self.width_attention(x, training=training)
        return subsample_axis(x, 2, self.strides, self.stride_mode)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = tuple(input_shape)
        return (batch, _common.conv_output_length(height, self.strides),
                _common.conv_output_length(width, self.strides), self.total_value_depth)

    def compute_madds(self, input_shape):
        """Both axial layers' multiply-adds (pooling is not counted)."""
        input_shape = tuple(input_shape)
        height_layer = self.height_attention if self.built else self._make_attention("h", 1)
        width_layer = self.width_attention if self.built else self._make_attention("w", 2)
        return (height_layer.compute_madds(input_shape)
                + width_layer.compute_madds(self._after_height(input_shape)))

    def get_config(self):
        config = super().get_config()
        config.update(self.attention_config)
        config["strides"] = self.strides
        config["stride_mode"] = self.stride_mode
        for key in ("kernel_initializer", "rpe_initializer"):
            if config[key] is not None:
                config[key] = keras.initializers.serialize(keras.initializers.get(config[key]))
        config["kernel_regularizer"] = keras.regularizers.serialize(
            keras.regularizers.get(config["kernel_regularizer"]))
        return config

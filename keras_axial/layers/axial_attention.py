"""Position-sensitive axial attention along one axis (Axial-DeepLab, Wang et al. 2020, Eq. 4)."""

import contextlib
import threading
from typing import NamedTuple, Optional

import keras
import numpy as np
from keras import ops

from keras_axial.layers import _common

# Added to the logits of out-of-image or out-of-span keys so that they never set the row max.
_MASKED_LOGIT = -1e9

# Logits per chunk of the inference path (float32: 1 MiB): several chunks in flight (and the
# few temporaries of each) still fit a CPU's L2/L3 cache. Of 2^15 .. 2^28, 2^17 .. 2^19 measured
# best.
_CHUNK_ELEMENTS = 1 << 18

# Default number of table rows for global attention: deeplab2's MAX_SPAN (509-row tables).
DEFAULT_GLOBAL_MAX_SPAN = 255


def _masked_softmax(logits, mask):
    """Softmax over the last axis in which keys where `mask` is False get exactly 0.

    The exponentials are multiplied by the mask, so the zeros do not depend on how a backend
    evaluates exp() of a huge negative logit, and rows without any valid key (padded queries)
    come out all zero instead of NaN.
    """
    if mask is None:
        return ops.softmax(logits, axis=-1)
    mask = ops.convert_to_tensor(mask)
    keep = ops.cast(mask, logits.dtype)
    logits = logits + (keep - 1.0) * (-_MASKED_LOGIT)
    exponentials = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True)) * keep
    total = ops.sum(exponentials, axis=-1, keepdims=True)
    return exponentials / ops.maximum(total, 1e-30)


class _Layout(NamedTuple):
    """The blocks of one axis length (see `AxialAttention._layout`)."""

    plan: str
    block: Optional[int]
    num_blocks: object
    gather: object
    mask: object
    index: object


_single_pass = threading.local()


@contextlib.contextmanager
def single_pass_attention():
    """Within this context, inference traces attention as one pass, not a loop over chunks.

    The inference pass normally runs over chunks of sequences in a while loop (less memory,
    faster on CPUs). With an unknown batch size that loop holds tensor lists whose element
    shape is unknown, which the TFLite converter cannot lower to builtin ops; a single pass
    computes the same values with builtins only. Used by `export/` when tracing for TFLite.
    """
    previous = getattr(_single_pass, "enabled", False)
    _single_pass.enabled = True
    try:
        yield
    finally:
        _single_pass.enabled = previous


def _map_over_chunks(function, tensors, chunk):
    """`function` over chunks of `chunk` entries of the leading axis of every tensor.

    The leading axis is padded to whole chunks (and the padding cut off again). With a known
    length, chunk count and size are balanced so that padding stays below one entry per chunk.
    Inside `single_pass_attention()`, `function` runs once on the whole tensors.
    """
    if getattr(_single_pass, "enabled", False):
        return function(tensors)
    total = ops.shape(tensors[0])[0]
    static_total = tensors[0].shape[0]
    if static_total is not None and static_total <= chunk:
        return function(tensors)
    if static_total is not None:
        count = -(-static_total // chunk)
        size = -(-static_total // count)
        padding = count * size - static_total
    else:
        # A static chunk size keeps the loop's element shapes known (XLA, TFLite lowering);
        # the padding costs at most one chunk.
        count = (total + chunk - 1) // chunk
        size = chunk
        padding = count * size - total

    def split(x):
        if static_total is None or padding:
            zeros = ops.zeros_like(x[:1])
            x = ops.concatenate([x, ops.repeat(zeros, padding, axis=0)], axis=0)
        return ops.reshape(x, (count, size) + tuple(ops.shape(x)[1:]))

    outputs = ops.map(function, tuple(split(x) for x in tensors))
    outputs = ops.reshape(outputs, (count * size,) + tuple(ops.shape(outputs)[2:]))
    if static_total is None or padding:
        outputs = outputs[:total]
    return outputs


@keras.saving.register_keras_serializable(package="keras_axial")
class AxialAttention(keras.layers.Layer):
    """Multi-head self-attention along one axis with query, key and value relative encodings.

    For each position `o` along `axis` and each head, with keys `p` in the span `N(o)`:

        y_o = sum_p softmax_p(BN(q_o.k_p) + BN(q_o.r^q_{p-o}) + BN(k_p.r^k_{p-o}))
                    * (v_p, r^v_{p-o})  -> BN(content) + BN(positional)

    exactly as in the paper and deeplab2: one bias-free projection to queries, keys and values
    followed by a batch norm; batch norm on each similarity term (one gamma/beta per head) and
    on each of the two retrieved outputs (one per channel); no `1/sqrt(d)` scaling (the
    similarity batch norms replace it); no output projection (the block's next 1x1 conv does
    it). The three relative tables are shared by the heads and hold `2 * max_span - 1` rows
    whatever the input size, so a layer built at one size runs at any other; the row for a key
    at offset `p - o` is `clip(p - o, -(max_span - 1), max_span - 1) + max_span - 1` (deeplab2's
    indexing: farther offsets share the end rows).

    Span. `span=None` is global attention. An odd `span=m` is local: each query attends to the
    keys at offsets `-(m - 1) / 2 .. (m - 1) / 2` that lie inside the image; keys beyond the
    border are masked out (they get exactly zero weight), never read as zeros. Local attention
    costs time linear in the axis length: queries are processed in blocks of
    `query_block_size`, each against the `query_block_size + m - 1` keys around it with a band
    mask. When `(m - 1) / 2 >= length - 1` every key is in reach and the layer computes exactly
    global attention.

    Ablations. `use_content_similarity` (q.k), `use_query_rpe` (q.r^q), `use_key_rpe` (k.r^k),
    `retrieve_value_content` (a.v) and `retrieve_value_rpe` (a.r^v) switch each term off:
    content only is plain multi-head attention (without scaling); `use_query_rpe` alone with
    content and value content is the SASA-style encoding.

    Numerics. Under mixed precision the similarity logits, their batch norms and the softmax
    run in float32; the projection and the value retrieval run in the compute dtype. At
    inference the batch norms are folded into the projection, the queries/keys and the
    retrieved outputs (their shifts on the similarity terms are constant over keys and cancel
    in the softmax), which is exact and saves passes over the `[.., length, length]` logits.
    In training with a local span the similarity batch-norm statistics are taken over the
    valid (query, key) pairs only.

    Args:
        total_key_depth: int, total query/key depth over all heads (`d_q * num_heads`); also the
            depth (per head) of the query and key tables is `total_key_depth // num_heads`.
        total_value_depth: int, total value depth over all heads; the output channels.
        num_heads: int, number of heads; must divide both depths. Defaults to `8`.
        span: None (global) or odd int `m >= 1`, the local span. Defaults to `None`.
        max_span: int, relative tables have `2 * max_span - 1` rows. Defaults to `None`: equal to
            `span` when local (the paper's `2m - 1` rows: 129 for `m = 65`), 255 (deeplab2's
            509-row tables) when global. With a local span it must be at least `(span + 1) // 2`
            so that every offset inside the span has its own row.
        axis: int, the axis attended along (not the batch axis 0, not the channel axis -1).
            `1` is the height of a `[batch, height, width, channels]` map or the sequence axis of
            `[batch, length, channels]`; `2` (or `-2`) the width. Defaults to `1`.
        use_query_rpe: bool, the `q . r^q` similarity term. Defaults to `True`.
        use_key_rpe: bool, the `k . r^k` similarity term. Defaults to `True`.
        use_content_similarity: bool, the `q . k` similarity term. Defaults to `True`.
        retrieve_value_rpe: bool, retrieve the value table `r^v`. Defaults to `True`.
        retrieve_value_content: bool, retrieve the values `v`. Defaults to `True`.
        batch_norm_momentum: float in [0, 1). Defaults to `0.99`.
        batch_norm_epsilon: float > 0. Defaults to `1e-3`.
        sync_batch_norm: bool, synchronized batch norm across replicas (TensorFlow backend).
            Defaults to `False`.
        query_block_size: None or int >= 1, how many queries share one key window in local
            attention; only speed depends on it. Defaults to `None`: a multiple of 8 near a quarter
            of the span (16 for `span=65`), lowered by up to a quarter where that pads the axis
            less (13 for lengths 129 and 257 with `span=65`).
        kernel_initializer: initializer of the `[channels, 2 * total_key_depth +
            total_value_depth]` projection. Defaults to `None`: truncated normal with standard
            deviation `channels ** -0.5` (deeplab2).
        rpe_initializer: initializer of the relative tables. Defaults to `None`: truncated
            normal with standard deviation 1.0 (deeplab2).
        kernel_regularizer: optional regularizer of the projection kernel. Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor of rank >= 3, channels last, e.g. `[batch, height, width, channels]`
            or `[batch, length, channels]`. Any length along `axis`, also unknown (`None`).
        training: bool, batch-norm statistics from the batch (True) or the moving averages.

    Returns:
        A tensor shaped like `inputs` with `total_value_depth` channels.

    Example:

    >>> layer = AxialAttention(64, 128, num_heads=8, span=65, axis=1)
    >>> y = layer(np.zeros((2, 100, 40, 128), "float32"))  # height attention
    >>> tuple(y.shape)
    (2, 100, 40, 128)

    Reference:
        Wang et al., "Axial-DeepLab: Stand-Alone Axial-Attention for Panoptic Segmentation",
        ECCV 2020, Sec. 3.1 (https://arxiv.org/abs/2003.07853).
    """

    def __init__(
        self,
        total_key_depth,
        total_value_depth,
        num_heads=8,
        span=None,
        max_span=None,
        axis=1,
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
        self.total_key_depth = _common.check_int("total_key_depth", total_key_depth, minimum=1)
        self.total_value_depth = _common.check_int("total_value_depth", total_value_depth,
                                                   minimum=1)
        self.num_heads = _common.check_int("num_heads", num_heads, minimum=1)
        for name, depth in (("total_key_depth", total_key_depth),
                            ("total_value_depth", total_value_depth)):
            if depth % num_heads:
                raise ValueError(f"`{name}` must be divisible by `num_heads`. "
                                 f"Received: {name}={depth}, num_heads={num_heads}")
        self.span = _common.check_int("span", span, minimum=1, allow_none=True, odd=True)
        self.max_span = _common.check_int("max_span", max_span, minimum=1, allow_none=True)
        if self.span is not None and self.max_span is not None:
            if self.max_span < (self.span + 1) // 2:
                raise ValueError(
                    "`max_span` must be at least (span + 1) // 2 so that every offset inside "
                    f"the span has its own table row. Received: max_span={max_span}, "
                    f"span={span} (needs max_span >= {(self.span + 1) // 2})")
        self.axis = _common.check_int("axis", axis)
        if self.axis in (0, -1):
            raise ValueError("`axis` must be a spatial axis, not the batch axis 0 or the channel "
                             f"axis -1. Received: axis={axis}")
        self.use_query_rpe = _common.check_bool("use_query_rpe", use_query_rpe)
        self.use_key_rpe = _common.check_bool("use_key_rpe", use_key_rpe)
        self.use_content_similarity = _common.check_bool("use_content_similarity",
                                                         use_content_similarity)
        self.retrieve_value_rpe = _common.check_bool("retrieve_value_rpe", retrieve_value_rpe)
        self.retrieve_value_content = _common.check_bool("retrieve_value_content",
                                                         retrieve_value_content)
        if not (use_query_rpe or use_key_rpe or use_content_similarity):
            raise ValueError(
                "At least one similarity term must be on. Received: use_content_similarity="
                f"{use_content_similarity}, use_query_rpe={use_query_rpe}, "
                f"use_key_rpe={use_key_rpe}")
        if not (retrieve_value_rpe or retrieve_value_content):
            raise ValueError(
                "At least one retrieved term must be on. Received: retrieve_value_content="
                f"{retrieve_value_content}, retrieve_value_rpe={retrieve_value_rpe}")
        _common.check_batch_norm_args(batch_norm_momentum, batch_norm_epsilon, sync_batch_norm)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.sync_batch_norm = sync_batch_norm
        self.query_block_size = _common.check_int("query_block_size", query_block_size,
                                                  minimum=1, allow_none=True)
        self.kernel_initializer = (None if kernel_initializer is None
                                   else keras.initializers.get(kernel_initializer))
        self.rpe_initializer = (None if rpe_initializer is None
                                else keras.initializers.get(rpe_initializer))
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

        self.key_depth_per_head = self.total_key_depth // self.num_heads
        self.value_depth_per_head = self.total_value_depth // self.num_heads
        if self.max_span is None:
            self.table_max_span = self.span if self.span is not None else DEFAULT_GLOBAL_MAX_SPAN
        else:
            self.table_max_span = self.max_span
        self.half_span = None if self.span is None else (self.span - 1) // 2
        if self.query_block_size is not None:
            self.block_size = self.query_block_size
        elif self.span is not None:
            # Each block of Q queries computes Q + m - 1 keys of which m are in its band: small
            # blocks waste less, large ones make larger matmuls. About a quarter of the span
            # (16 for m = 65) measured best on CPU.
            self.block_size = max(8, 8 * (-(-self.half_span // 16)))
        else:
            self.block_size = None

    # ---------------------------------------------------------------------------------------
    # Build

    def _axis_index(self, rank):
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis <= rank - 2:
            raise ValueError(f"`axis`={self.axis} is not a spatial axis of a rank-{rank} input "
                             f"(expected 1 .. {rank - 2} or {-(rank - 1)} .. -2).")
        return axis

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 3:
            raise ValueError("AxialAttention expects inputs of rank >= 3 (batch, ..., channels). "
                             f"Received: input_shape={input_shape}")
        self._axis_index(len(input_shape))
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("The channel dimension of the inputs must be known. "
                             f"Received: input_shape={input_shape}")
        qkv_depth = 2 * self.total_key_depth + self.total_value_depth
        rows = 2 * self.table_max_span - 1
        kernel_init = self.kernel_initializer or keras.initializers.TruncatedNormal(
            stddev=channels ** -0.5)
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel", shape=(channels, qkv_depth), initializer=kernel_init,
            regularizer=self.kernel_regularizer)
        rpe_init = self.rpe_initializer or keras.initializers.TruncatedNormal(stddev=1.0)
        self.query_rpe = self.key_rpe = self.value_rpe = None
        if self.use_query_rpe:
            self.query_rpe = self.add_weight(
                name="query_rpe", shape=(rows, self.key_depth_per_head), initializer=rpe_init)
        if self.use_key_rpe:
            self.key_rpe = self.add_weight(
                name="key_rpe", shape=(rows, self.key_depth_per_head), initializer=rpe_init)
        if self.retrieve_value_rpe:
            self.value_rpe = self.add_weight(
                name="value_rpe", shape=(rows, self.value_depth_per_head),
                initializer=rpe_init)

        bn_args = (self.batch_norm_momentum, self.batch_norm_epsilon, self.sync_batch_norm)
        self.qkv_batch_norm = _common.batch_norm("qkv_batch_norm", *bn_args,
                                                 dtype=self.dtype_policy)
        self.qkv_batch_norm.build((None, None, qkv_depth))
        # Similarity terms are laid out [sequences, heads, blocks, queries, keys]: a batch norm
        # on axis 1 gives one gamma/beta per head, as deeplab2's per-(term, head) batch norm.
        similarity_policy = _common.float32_policy_for(self.dtype_policy)
        similarity_shape = (None, self.num_heads, None, None, None)
        self.similarity_batch_norms = {}
        for term, used in (("content", self.use_content_similarity),
                           ("query_rpe", self.use_query_rpe),
                           ("key_rpe", self.use_key_rpe)):
            if used:
                layer = _common.batch_norm(f"{term}_similarity_batch_norm", *bn_args, axis=1,
                                           dtype=similarity_policy)
                layer.build(similarity_shape)
                setattr(self, f"{term}_similarity_batch_norm", layer)
                self.similarity_batch_norms[term] = layer
        # Retrieved outputs are laid out [sequences, length, heads * value depth]: one batch
        # norm on the last axis is deeplab2's per-(term, head, channel) batch norm.
        self.output_batch_norms = {}
        for term, used in (("content", self.retrieve_value_content),
                           ("value_rpe", self.retrieve_value_rpe)):
            if used:
                layer = _common.batch_norm(f"{term}_output_batch_norm", *bn_args,
                                           dtype=self.dtype_policy)
                layer.build((None, None, self.total_value_depth))
                setattr(self, f"{term}_output_batch_norm", layer)
                self.output_batch_norms[term] = layer
        self.built = True

    # ---------------------------------------------------------------------------------------
    # Call

    def call(self, inputs, training=None):
        training = bool(training)
        sequences, restore = self._fold_to_sequences(inputs)  # [N, L, C]
        length = ops.shape(sequences)[1]
        static_length = sequences.shape[1]
        layout = self._layout(length, static_length)
        attention_norms = (list(self.similarity_batch_norms.values())
                           + list(self.output_batch_norms.values()))
        if not any(self._uses_batch_statistics(bn, training) for bn in attention_norms):
            return restore(self._attend_inference(sequences, layout, static_length, training))
        query, key, value = self._split_heads(self._project(sequences, training))
        query, key, value = self._to_blocks(query, key, value, layout, length)
        # query [N, h, nb, Q, dk]; key [N, h, nb, W, dk]; value [N, h, nb, W, dv];
        # mask [nb, Q, W] (True where a key is in the span and the image) or None;
        # index [Q, W] relative-table rows.
        logits = self._similarity(query, key, layout.index, layout.mask, training)
        weights = _masked_softmax(logits, layout.mask)
        outputs = self._retrieve(weights, value, layout.index, length, static_length,
                                 training)  # [N, L, V]
        return restore(outputs)

    def _fold_to_sequences(self, inputs):
        rank = len(inputs.shape)
        axis = self._axis_index(rank)
        shape = ops.shape(inputs)
        if axis == rank - 2:
            perm = None
            moved_shape = list(shape)
        else:
            perm = [i for i in range(rank - 1) if i != axis] + [axis, rank - 1]
            inputs = ops.transpose(inputs, perm)
            moved_shape = [shape[i] for i in perm]
        sequences = ops.reshape(inputs, (-1, moved_shape[-2], moved_shape[-1]))

        def restore(outputs):
            outputs = ops.reshape(outputs, tuple(moved_shape[:-1]) + (self.total_value_depth,))
            if perm is not None:
                outputs = ops.transpose(outputs, list(np.argsort(perm)))
            return outputs

        return sequences, restore

    @staticmethod
    def _uses_batch_statistics(batch_norm, training):
        return training and batch_norm.trainable

    def _inference_affine(self, batch_norm):
        """(scale, shift) in float32 equal to the batch norm's inference transform."""
        scale = ops.rsqrt(ops.cast(batch_norm.moving_variance, "float32") + batch_norm.epsilon)
        scale = scale * ops.cast(batch_norm.gamma, "float32")
        shift = (ops.cast(batch_norm.beta, "float32")
                 - ops.cast(batch_norm.moving_mean, "float32") * scale)
        return scale, shift

    def _project(self, sequences, training):
        """[N, L, C] -> [N, L, 2K + V]: the projection and its batch norm."""
        if self._uses_batch_statistics(self.qkv_batch_norm, training):
            kernel = ops.cast(self.qkv_kernel, self.compute_dtype)
            return self.qkv_batch_norm(ops.matmul(sequences, kernel), training=training)
        kernel, shift = self._folded_projection()
        return ops.matmul(sequences, kernel) + shift

    def _folded_projection(self):
        """Kernel and shift of the projection with its inference batch norm folded in."""
        scale, shift = self._inference_affine(self.qkv_batch_norm)
        kernel = ops.cast(ops.cast(self.qkv_kernel, "float32") * scale, self.compute_dtype)
        return kernel, ops.cast(shift, self.compute_dtype)

    def _split_heads(self, qkv):
        """[N, L, 2K + V] -> queries, keys [N, h, L, dk] and values [N, h, L, dv]."""
        key_depth, heads = self.total_key_depth, self.num_heads

        def split(x, depth):  # [N, L, h * d] -> [N, h, L, d]
            x = ops.reshape(x, (ops.shape(x)[0], ops.shape(x)[1], heads, depth))
            return ops.transpose(x, (0, 2, 1, 3))

        return (split(qkv[..., :key_depth], self.key_depth_per_head),
                split(qkv[..., key_depth:2 * key_depth], self.key_depth_per_head),
                split(qkv[..., 2 * key_depth:], self.value_depth_per_head))

    def _plan(self, static_length):
        """'global', 'dense' (one masked block over the whole axis) or 'blocked'."""
        if self.span is None:
            return "global"
        if static_length is not None:
            if self.half_span >= static_length - 1:
                return "global"
            if static_length <= self.block_size + 2 * self.half_span:
                return "dense"
        return "blocked"

    def _block_size(self, static_length):
        """Queries per block of the blocked plan: `query_block_size`, or for a known length the
        size between 3/4 of the default and the default that computes the fewest logits
        (`ceil(L / Q) * Q` padded queries times `Q + m - 1` keys) if that saves 5% or more
        (smaller blocks cost more per logit); 13 instead of 16 for the `16k + 1` lengths 129
        and 257 with `m = 65`: 13% and 8% fewer logits."""
        if self.query_block_size is not None or static_length is None:
            return self.block_size

        def logits(q):
            return -(-static_length // q) * q * (q + 2 * self.half_span)

        candidates = range(max(1, (3 * self.block_size) // 4), self.block_size + 1)
        best = min(candidates, key=lambda q: (logits(q), -q))
        return best if logits(best) <= 0.95 * logits(self.block_size) else self.block_size

    def _table_rows(self, query_positions, key_positions):
        """Row of the relative tables for each (query, key): [Q, W]."""
        limit = self.table_max_span - 1
        if isinstance(query_positions, np.ndarray) and isinstance(key_positions, np.ndarray):
            offsets = key_positions[None, :] - query_positions[:, None]
            return np.clip(offsets, -limit, limit).astype("int32") + limit
        offsets = ops.expand_dims(key_positions, 0) - ops.expand_dims(query_positions, 1)
        return ops.clip(offsets, -limit, limit) + limit

    def _layout(self, length, static_length):
        """How the axis is cut into blocks: what does not depend on the data.

        Returns a `_Layout`: the plan; for the blocked plan the block size, the number of
        blocks and the `[nb, W]` key window of each block (positions in the padded keys);
        `mask`, `[nb, Q, W]`, True where a key is in the span and the image (None for global
        attention); `index`, `[Q, W]`, the relative-table row of each (query, key).
        """
        plan = self._plan(static_length)
        if plan in ("global", "dense"):
            # One block holding the whole axis.
            if static_length is not None:
                positions = np.arange(static_length)
            else:
                positions = ops.arange(length, dtype="int32")
            index = self._table_rows(positions, positions)
            mask = None
            if plan == "dense":
                offsets = positions[None, :] - positions[:, None]
                mask = (np.abs(offsets) <= self.half_span)[None]
            return _Layout(plan, None, 1, None, mask, index)

        block, half = self._block_size(static_length), self.half_span
        window = block + 2 * half
        num_blocks = (length + block - 1) // block
        starts = ops.arange(num_blocks, dtype="int32") * block  # window start in padded keys
        gather = ops.expand_dims(starts, 1) + ops.expand_dims(ops.arange(window, dtype="int32"), 0)
        query_offsets = np.arange(block)
        key_offsets = np.arange(window) - half  # key position relative to the block start
        index = self._table_rows(query_offsets, key_offsets)
        band = np.abs(key_offsets[None, :] - query_offsets[:, None]) <= half  # [Q, W]
        key_positions = ops.expand_dims(starts, 1) + ops.expand_dims(
            ops.convert_to_tensor(key_offsets.astype("int32")), 0)  # [nb, W]
        query_positions = ops.expand_dims(starts, 1) + ops.expand_dims(
            ops.convert_to_tensor(query_offsets.astype("int32")), 0)  # [nb, Q]
        inside = ops.logical_and(key_positions >= 0, key_positions < length)  # [nb, W]
        real_query = query_positions < length  # [nb, Q]
        mask = ops.logical_and(ops.expand_dims(inside, 1), ops.convert_to_tensor(band)[None])
        mask = ops.logical_and(mask, ops.expand_dims(real_query, 2))  # [nb, Q, W]
        return _Layout(plan, block, num_blocks, gather, mask, index)

    def _to_blocks(self, query, key, value, layout, length):
        """[N, h, L, d] -> queries [N, h, nb, Q, dk], keys [N, h, nb, W, dk], values likewise."""
        if layout.plan != "blocked":
            return tuple(ops.expand_dims(t, 2) for t in (query, key, value))
        block, half = layout.block, self.half_span
        padded_length = layout.num_blocks * block

        def pad_axis2(x, before, after):
            zeros = ops.zeros_like(x[:, :, :1])
            pieces = []
            if before:
                pieces.append(ops.repeat(zeros, before, axis=2))
            pieces.append(x)
            pieces.append(ops.repeat(zeros, after, axis=2))
            return ops.concatenate(pieces, axis=2)

        # Queries: pad to whole blocks. Keys/values: `half` in front of the first query and
        # enough behind the last block's window; the padding is masked, never attended.
        query = pad_axis2(query, 0, padded_length - length)
        query = ops.reshape(query, (ops.shape(query)[0], self.num_heads, layout.num_blocks,
                                    block, self.key_depth_per_head))
        key = pad_axis2(key, half, padded_length - length + half)
        value = pad_axis2(value, half, padded_length - length + half)
        key = ops.take(key, layout.gather, axis=2)  # [N, h, nb, W, dk]
        value = ops.take(value, layout.gather, axis=2)
        return query, key, value

    def _attend_inference(self, sequences, layout, static_length, training):
        """Inference attention with folded batch norms, over chunks of sequences.

        Each chunk of a few sequences goes through the whole layer: projection, heads, key
        windows, logits, softmax, retrieval. The `[.., Q, W]` logits are by far the largest
        tensors and the key windows repeat every key `W / Q` times: built for a few sequences
        at a time they stay in cache, which is what makes the layer fast on CPUs (several
        times faster than one pass over the whole batch at 64x64 and up, and the same cost per
        pixel on large maps as on small ones). Chunks run through `ops.map` (a while loop), so
        graphs stay small. A projection batch norm that still learns (training with frozen
        attention batch norms) needs the whole batch, so it runs before the chunks.
        """
        heads = self.num_heads
        mask, index = layout.mask, layout.index
        dtype = _common.logits_dtype(self.compute_dtype)

        def head_scale(batch_norm, cast_dtype):
            scale, _ = self._inference_affine(batch_norm)
            return ops.reshape(ops.cast(scale, cast_dtype), (1, heads, 1, 1, 1))

        def channel_affine(batch_norm):
            scale, shift = self._inference_affine(batch_norm)
            scale = ops.reshape(ops.cast(scale, self.compute_dtype),
                                (1, heads, 1, 1, self.value_depth_per_head))
            return scale, shift

        similarity = self.similarity_batch_norms
        scales = {term: head_scale(bn, dtype) for term, bn in similarity.items()}
        tables = {}
        for name in ("query_rpe", "key_rpe"):
            if name in similarity:
                tables[name] = ops.take(ops.cast(getattr(self, name), dtype), index, axis=0)
        output_scales, shift = {}, 0.0
        for term, batch_norm in self.output_batch_norms.items():
            output_scales[term], term_shift = channel_affine(batch_norm)
            shift = shift + term_shift
        if self.retrieve_value_rpe:
            value_table = ops.take(ops.cast(self.value_rpe, self.compute_dtype), index, axis=0)

        project_in_chunks = not self._uses_batch_statistics(self.qkv_batch_norm, training)
        if project_in_chunks:
            kernel, qkv_shift = self._folded_projection()
        else:
            sequences = self._project(sequences, training)

        def attend(chunk):
            qkv = chunk[0]
            if project_in_chunks:
                qkv = ops.matmul(qkv, kernel) + qkv_shift
            q, k, v = self._split_heads(qkv)
            q, k, v = self._to_blocks(q, k, v, layout, ops.shape(qkv)[1])
            q = ops.cast(q, dtype)
            k = ops.cast(k, dtype)
            logits = None
            for term in ("content", "query_rpe", "key_rpe"):
                if term not in similarity:
                    continue
                if term == "content":
                    t = ops.einsum("nhbid,nhbjd->nhbij", q * scales[term], k)
                elif term == "query_rpe":
                    t = ops.einsum("nhbid,ijd->nhbij", q * scales[term], tables[term])
                else:
                    t = ops.einsum("nhbjd,ijd->nhbij", k * scales[term], tables[term])
                logits = t if logits is None else logits + t
            weights = ops.cast(_masked_softmax(logits, mask), self.compute_dtype)
            out = None
            if self.retrieve_value_content:
                out = ops.einsum("nhbij,nhbjd->nhbid", weights, v * output_scales["content"])
            if self.retrieve_value_rpe:
                r = ops.einsum("nhbij,ijd->nhbid", weights, value_table)
                r = r * output_scales["value_rpe"]
                out = r if out is None else out + r
            return self._merge_heads(out, ops.shape(qkv)[1], qkv.shape[1])

        outputs = _map_over_chunks(attend, (sequences,),
                                   self._chunk_sequences(layout, static_length))
        return outputs + ops.cast(shift, self.compute_dtype)

    def _chunk_sequences(self, layout, static_length):
        """How many sequences one chunk holds: about `_CHUNK_ELEMENTS` logits."""
        if layout.plan == "blocked":
            # An unknown number of blocks counts as 128.
            num_blocks = layout.num_blocks if static_length is not None else 128
            logits = num_blocks * layout.block * (layout.block + 2 * self.half_span)
        else:
            logits = (static_length or 128) ** 2
        return max(1, _CHUNK_ELEMENTS // (self.num_heads * logits))

    def _similarity(self, query, key, index, mask, training):
        dtype = _common.logits_dtype(self.compute_dtype)
        query = ops.cast(query, dtype)
        key = ops.cast(key, dtype)
        terms = []
        for term, table in (("content", None), ("query_rpe", self.query_rpe),
                            ("key_rpe", self.key_rpe)):
            batch_norm = self.similarity_batch_norms.get(term)
            if batch_norm is None:
                continue
            batch_stats = self._uses_batch_statistics(batch_norm, training)
            if not batch_stats:
                # The shift of the inference batch norm is constant over keys: it cancels in
                # the softmax. The scale folds into the (small) query or key tensor.
                scale, _ = self._inference_affine(batch_norm)
                scale = ops.reshape(ops.cast(scale, dtype), (1, self.num_heads, 1, 1, 1))
            if term == "content":
                q = query if batch_stats else query * scale
                value = ops.einsum("nhbid,nhbjd->nhbij", q, key)
            elif term == "query_rpe":
                embedding = ops.take(ops.cast(table, dtype), index, axis=0)  # [Q, W, dk]
                q = query if batch_stats else query * scale
                value = ops.einsum("nhbid,ijd->nhbij", q, embedding)
            else:
                embedding = ops.take(ops.cast(table, dtype), index, axis=0)
                k = key if batch_stats else key * scale
                value = ops.einsum("nhbjd,ijd->nhbij", k, embedding)
            if batch_stats:
                value = self._normalize_similarity(batch_norm, value, mask)
            terms.append(value)
        logits = terms[0]
        for value in terms[1:]:
            logits = logits + value
        return logits

    def _normalize_similarity(self, batch_norm, value, mask):
        """Training-mode batch norm of one [N, h, nb, Q, W] term over its valid entries."""
        axes = (0, 2, 3, 4)
        if mask is None:
            mean, variance = ops.moments(value, axes=axes, synchronized=batch_norm.synchronized)
        else:
            weight = ops.cast(ops.convert_to_tensor(mask), value.dtype)[None, None]
            masked = value * weight
            if batch_norm.synchronized:
                # Synchronized moments only average; recover the masked moments from the
                # averages of x*w and (x*w)^2 (w is 0/1) and the fraction of valid entries.
                mean_xw, variance_xw = ops.moments(masked, axes=axes, synchronized=True)
                fraction = ops.mean(weight)
                mean = mean_xw / fraction
                variance = ops.maximum(
                    (variance_xw + ops.square(mean_xw)) / fraction - ops.square(mean), 0.0)
            else:
                count = ops.sum(weight) * ops.cast(ops.shape(value)[0], value.dtype)
                mean = ops.sum(masked, axis=axes) / count
                centered = (value - ops.reshape(mean, (1, -1, 1, 1, 1))) * weight
                variance = ops.sum(ops.square(centered), axis=axes) / count
        momentum = batch_norm.momentum
        batch_norm.moving_mean.assign(
            ops.cast(batch_norm.moving_mean, mean.dtype) * momentum + mean * (1.0 - momentum))
        batch_norm.moving_variance.assign(
            ops.cast(batch_norm.moving_variance, variance.dtype) * momentum
            + variance * (1.0 - momentum))
        scale = ops.rsqrt(variance + batch_norm.epsilon) * ops.cast(batch_norm.gamma, value.dtype)
        shift = ops.cast(batch_norm.beta, value.dtype) - mean * scale
        return (value * ops.reshape(scale, (1, -1, 1, 1, 1))
                + ops.reshape(shift, (1, -1, 1, 1, 1)))

    def _retrieve(self, weights, value, index, length, static_length, training):
        weights = ops.cast(weights, self.compute_dtype)
        outputs = None
        for term in ("content", "value_rpe"):
            batch_norm = self.output_batch_norms.get(term)
            if batch_norm is None:
                continue
            if term == "content":
                retrieved = ops.einsum("nhbij,nhbjd->nhbid", weights, value)
            else:
                embedding = ops.take(ops.cast(self.value_rpe, self.compute_dtype), index, axis=0)
                retrieved = ops.einsum("nhbij,ijd->nhbid", weights, embedding)
            retrieved = self._merge_heads(retrieved, length, static_length)  # [N, L, V]
            if self._uses_batch_statistics(batch_norm, training):
                retrieved = batch_norm(retrieved, training=training)
            else:
                scale, shift = self._inference_affine(batch_norm)
                retrieved = (retrieved * ops.cast(scale, self.compute_dtype)
                             + ops.cast(shift, self.compute_dtype))
            outputs = retrieved if outputs is None else outputs + retrieved
        return outputs

    def _merge_heads(self, x, length, static_length):
        """[N, h, nb, Q, dv] -> [N, L, h * dv], dropping padded query rows."""
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], self.num_heads, shape[2] * shape[3],
                            self.value_depth_per_head))
        if static_length is None or x.shape[2] != static_length:
            x = x[:, :, :length]
        x = ops.transpose(x, (0, 2, 1, 3))
        return ops.reshape(x, (shape[0], length, self.total_value_depth))

    # ---------------------------------------------------------------------------------------
    # Shapes, cost, config

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.total_value_depth,)

    def compute_madds(self, input_shape):
        """Multiply-adds of one call (paper count: `m` keys per query for a local span).

        Projection `positions * channels * (2K + V)` plus, per (query, key) pair, `K` for each
        similarity term and `V` for each retrieved term that is switched on.
        """
        input_shape = tuple(input_shape)
        if any(d is None for d in input_shape):
            raise ValueError(f"compute_madds needs a fully known input shape. "
                             f"Received: input_shape={input_shape}")
        axis = self._axis_index(len(input_shape))
        positions = int(np.prod(input_shape[:-1]))
        length = input_shape[axis]
        keys = length if self.span is None else min(self.span, length)
        pair_cost = self.total_key_depth * (self.use_content_similarity + self.use_query_rpe
                                            + self.use_key_rpe)
        pair_cost += self.total_value_depth * (self.retrieve_value_content
                                               + self.retrieve_value_rpe)
        projection = input_shape[-1] * (2 * self.total_key_depth + self.total_value_depth)
        return positions * (projection + keys * pair_cost)

    def get_config(self):
        config = super().get_config()
        config.update({
            "total_key_depth": self.total_key_depth,
            "total_value_depth": self.total_value_depth,
            "num_heads": self.num_heads,
            "span": self.span,
            "max_span": self.max_span,
            "axis": self.axis,
            "use_query_rpe": self.use_query_rpe,
            "use_key_rpe": self.use_key_rpe,
            "use_content_similarity": self.use_content_similarity,
            "retrieve_value_rpe": self.retrieve_value_rpe,
            "retrieve_value_content": self.retrieve_value_content,
            "batch_norm_momentum": self.batch_norm_momentum,
            "batch_norm_epsilon": self.batch_norm_epsilon,
            "sync_batch_norm": self.sync_batch_norm,
            "query_block_size": self.query_block_size,
            "kernel_initializer": (None if self.kernel_initializer is None
                                   else keras.initializers.serialize(self.kernel_initializer)),
            "rpe_initializer": (None if self.rpe_initializer is None
                                else keras.initializers.serialize(self.rpe_initializer)),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        })
        return config

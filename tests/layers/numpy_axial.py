"""Float64 numpy re-implementation of axial attention, independent of the Keras layers.

Follows deeplab2's semantics as documented in `tests/convert/fixtures/deeplab2/reference.json`
(qkv projection + BN, per-(term, head) similarity BNs, per-(term, channel) output BNs, tables
indexed by `key - query + max_span - 1`, clipped), extended with the local span (keys outside
the image or the span are excluded from the softmax, and from the similarity batch-norm
statistics in training), the term switches, strided 2D attention (`"slice"`: keep `::s`;
`"pool"`: mean over windows of `s` starting at 0) and the bottleneck block. Used as the oracle
for the layers and for the deeplab2 import; `tests/convert` checks it against deeplab2's own
outputs first.
"""

import numpy as np

BN_KEYS = ("gamma", "beta", "moving_mean", "moving_variance")


def batch_norm(x, params, axis_shape=None, epsilon=1e-3, axes=None, valid=None):
    """Batch norm of `x`. Inference (`axes=None`): moving statistics. Training: statistics
    over `axes`, restricted to entries where `valid` (broadcastable to x) is True."""
    gamma, beta, mean, var = (np.asarray(params[k], np.float64) for k in BN_KEYS)
    if axis_shape is not None:
        gamma, beta, mean, var = (a.reshape(axis_shape) for a in (gamma, beta, mean, var))
    if axes is not None:
        weight = np.ones_like(x) if valid is None else np.broadcast_to(valid, x.shape) * 1.0
        count = weight.sum(axis=axes, keepdims=True)
        mean = (x * weight).sum(axis=axes, keepdims=True) / count
        var = (((x - mean) ** 2) * weight).sum(axis=axes, keepdims=True) / count
    return gamma * (x - mean) / np.sqrt(var + epsilon) + beta


def axial_attention_1d(x, weights, num_heads, span=None, max_span=255,
                       terms=("content", "query_rpe", "key_rpe"),
                       retrieve=("content", "value_rpe"), epsilon=1e-3, training=False,
                       zero_padded_keys=False, return_weights=False):
    """x: [N, L, C]. weights: dict with qkv_kernel [C, 2K+V], batch_norm_qkv (dict),
    similarity_bn[term] (dict of [h] arrays), output_bn[term] (dict of [V] arrays),
    query_rpe / key_rpe [2M-1, dk], value_rpe [2M-1, dv]. Returns [N, L, V].

    `zero_padded_keys=True` computes the *wrong* border semantics (keys beyond the image read
    as zero vectors, as a zero-padded implementation would), to show the layer does not.
    """
    x = np.asarray(x, np.float64)
    n, length, _ = x.shape
    stats = (0, 1) if training else None
    qkv = x @ np.asarray(weights["qkv_kernel"], np.float64)
    qkv = batch_norm(qkv, weights["batch_norm_qkv"], epsilon=epsilon, axes=stats)
    v_total = weights["output_bn"][retrieve[0]]["gamma"].shape[0]
    k_total = (qkv.shape[-1] - v_total) // 2
    dk, dv = k_total // num_heads, v_total // num_heads
    q = qkv[..., :k_total].reshape(n, length, num_heads, dk).transpose(0, 2, 1, 3)
    k = qkv[..., k_total:2 * k_total].reshape(n, length, num_heads, dk).transpose(0, 2, 1, 3)
    v = qkv[..., 2 * k_total:].reshape(n, length, num_heads, dv).transpose(0, 2, 1, 3)
    query_pos = np.arange(length)
    key_pos = np.arange(length)
    if zero_padded_keys:
        half = (span - 1) // 2
        key_pos = np.arange(-half, length + half)
        pad = ((0, 0), (0, 0), (half, half), (0, 0))
        k, v = np.pad(k, pad), np.pad(v, pad)
    offsets = key_pos[None, :] - query_pos[:, None]  # key - query
    rows = np.clip(offsets, -(max_span - 1), max_span - 1) + max_span - 1
    allowed = np.ones(offsets.shape, bool) if span is None else (
        np.abs(offsets) <= (span - 1) // 2)
    logits = 0.0
    for term in terms:
        if term == "content":
            t = np.einsum("nhld,nhmd->nhlm", q, k)
        elif term == "query_rpe":
            t = np.einsum("nhld,lmd->nhlm", q, np.asarray(weights["query_rpe"], np.float64)[rows])
        else:
            t = np.einsum("nhmd,lmd->nhlm", k, np.asarray(weights["key_rpe"], np.float64)[rows])
        logits = logits + batch_norm(t, weights["similarity_bn"][term], (1, num_heads, 1, 1),
                                     epsilon, axes=(0, 2, 3) if training else None,
                                     valid=allowed)
    logits = np.where(allowed, logits, -np.inf)
    logits = logits - logits.max(-1, keepdims=True)
    a = np.exp(logits)
    a /= a.sum(-1, keepdims=True)
    out = 0.0
    for term in retrieve:
        if term == "content":
            r = np.einsum("nhlm,nhmd->nhld", a, v)
        else:
            r = np.einsum("nhlm,lmd->nhld", a, np.asarray(weights["value_rpe"], np.float64)[rows])
        r = r.transpose(0, 2, 1, 3).reshape(n, length, v_total)
        out = out + batch_norm(r, weights["output_bn"][term], epsilon=epsilon, axes=stats)
    return (out, a) if return_weights else out


def subsample(x, axis, strides, mode):
    """`"slice"`: keep `::strides`; `"pool"`: mean over windows of `strides` from 0."""
    if strides == 1:
        return x
    if mode == "slice":
        return np.take(x, np.arange(0, x.shape[axis], strides), axis=axis)
    pieces = [np.take(x, np.arange(start, min(start + strides, x.shape[axis])), axis=axis)
              .mean(axis=axis, keepdims=True) for start in range(0, x.shape[axis], strides)]
    return np.concatenate(pieces, axis=axis)


def axial_attention_2d(x, height_weights, width_weights, num_heads, strides=1,
                       stride_mode="slice", **kwargs):
    """x: [B, H, W, C] -> height attention, subsample rows, width attention, subsample cols."""
    b, h, w, c = x.shape
    y = axial_attention_1d(np.transpose(x, (0, 2, 1, 3)).reshape(b * w, h, c), height_weights,
                           num_heads, **kwargs)
    y = np.transpose(y.reshape(b, w, h, -1), (0, 2, 1, 3))
    y = subsample(y, 1, strides, stride_mode)
    h2 = y.shape[1]
    y = axial_attention_1d(y.reshape(b * h2, w, -1), width_weights, num_heads, **kwargs)
    y = y.reshape(b, h2, w, -1)
    return subsample(y, 2, strides, stride_mode)


def conv1x1(x, kernel, strides=1):
    """1x1 convolution with 'same' padding: samples pixels 0, s, 2s, ..."""
    kernel = np.asarray(kernel, np.float64).reshape(kernel.shape[-2], kernel.shape[-1])
    return np.asarray(x, np.float64)[:, ::strides, ::strides] @ kernel


def axial_block(x, weights, num_heads, strides=1, stride_mode="slice", projection=True,
                epsilon=1e-3, **kwargs):
    """deeplab2's AxialBlock (inference): weights has conv1/conv3/shortcut kernels and BNs."""
    x = np.maximum(np.asarray(x, np.float64), 0.0)
    if projection:
        shortcut = batch_norm(conv1x1(x, weights["shortcut_kernel"], strides),
                              weights["shortcut_bn"], epsilon=epsilon)
    else:
        shortcut = subsample(subsample(x, 1, strides, stride_mode), 2, strides, stride_mode)
    y = np.maximum(batch_norm(conv1x1(x, weights["conv1_kernel"]), weights["conv1_bn"],
                              epsilon=epsilon), 0.0)
    y = axial_attention_2d(y, weights["height"], weights["width"], num_heads, strides,
                           stride_mode, epsilon=epsilon, **kwargs)
    y = batch_norm(conv1x1(np.maximum(y, 0.0), weights["conv3_kernel"]), weights["conv3_bn"],
                   epsilon=epsilon)
    return y + shortcut


def _bn_values(layer_bn):
    return {k: np.asarray(getattr(layer_bn, k)) for k in BN_KEYS}


def axial_weights_from_layer(layer):
    """The numpy weight dict of a built `keras_axial.layers.AxialAttention`."""
    weights = {
        "qkv_kernel": np.asarray(layer.qkv_kernel),
        "batch_norm_qkv": _bn_values(layer.qkv_batch_norm),
        "similarity_bn": {t: _bn_values(b) for t, b in layer.similarity_batch_norms.items()},
        "output_bn": {t: _bn_values(b) for t, b in layer.output_batch_norms.items()},
    }
    for name in ("query_rpe", "key_rpe", "value_rpe"):
        if getattr(layer, name) is not None:
            weights[name] = np.asarray(getattr(layer, name))
    return weights


def block_weights_from_layer(block):
    """The numpy weight dict of a built `keras_axial.layers.AxialBlock`."""
    weights = {
        "conv1_kernel": np.asarray(block.conv1.kernel),
        "conv1_bn": _bn_values(block.conv1_batch_norm),
        "height": axial_weights_from_layer(block.attention.height_attention),
        "width": axial_weights_from_layer(block.attention.width_attention),
        "conv3_kernel": np.asarray(block.conv3.kernel),
        "conv3_bn": _bn_values(block.conv3_batch_norm),
    }
    if block.projection:
        weights["shortcut_kernel"] = np.asarray(block.shortcut_conv.kernel)
        weights["shortcut_bn"] = _bn_values(block.shortcut_batch_norm)
    return weights


def randomize_layer(layer, seed):
    """Gives every variable of a built layer random, well-conditioned values (BN statistics
    included) so that a comparison exercises every weight."""
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        path = variable.path
        shape = tuple(variable.shape)
        if path.endswith("gamma") or path.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif path.endswith("beta") or path.endswith("moving_mean"):
            value = rng.normal(0.0, 0.1, shape)
        elif len(shape) >= 2 and ("kernel" in path):
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, fan_in ** -0.5, shape)
        elif "seed_generator" in path:
            continue
        else:
            value = rng.normal(0.0, 1.0, shape)
        variable.assign(value.astype(variable.dtype))

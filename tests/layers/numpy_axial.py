"""Float64 numpy re-implementation of axial attention, independent of the Keras layers.

Follows deeplab2's semantics as documented in `tests/convert/fixtures/deeplab2/reference.json`
(inference mode), extended with the local span (keys outside the image or the span are
excluded from the softmax) and the term switches. Used as the oracle for the layers and the
deeplab2 import; it is itself checked against deeplab2's outputs in `tests/convert`.
"""

import numpy as np


def batch_norm(x, params, axis_shape=None, epsilon=1e-3):
    """Inference batch norm; `params` = dict(gamma, beta, moving_mean, moving_variance)."""
    gamma, beta, mean, var = (np.asarray(params[k], np.float64)
                              for k in ("gamma", "beta", "moving_mean", "moving_variance"))
    if axis_shape is not None:
        gamma, beta, mean, var = (a.reshape(axis_shape) for a in (gamma, beta, mean, var))
    return gamma * (x - mean) / np.sqrt(var + epsilon) + beta


def axial_attention_1d(x, weights, num_heads, span=None, max_span=255,
                       terms=("content", "query_rpe", "key_rpe"),
                       retrieve=("content", "value_rpe"), epsilon=1e-3, return_weights=False):
    """x: [N, L, C]. weights: dict with qkv_kernel [C, 2K+V], batch_norm_qkv (dict),
    similarity_bn[term] (dict of [h] arrays), output_bn[term] (dict of [V] arrays),
    query_rpe / key_rpe [2M-1, dk], value_rpe [2M-1, dv]. Returns [N, L, V]."""
    x = np.asarray(x, np.float64)
    n, length, _ = x.shape
    qkv = x @ np.asarray(weights["qkv_kernel"], np.float64)
    qkv = batch_norm(qkv, weights["batch_norm_qkv"], epsilon=epsilon)
    v_total = weights["output_bn"][retrieve[0]]["gamma"].shape[0]
    k_total = (qkv.shape[-1] - v_total) // 2
    dk, dv = k_total // num_heads, v_total // num_heads
    q = qkv[..., :k_total].reshape(n, length, num_heads, dk).transpose(0, 2, 1, 3)
    k = qkv[..., k_total:2 * k_total].reshape(n, length, num_heads, dk).transpose(0, 2, 1, 3)
    v = qkv[..., 2 * k_total:].reshape(n, length, num_heads, dv).transpose(0, 2, 1, 3)
    pos = np.arange(length)
    offsets = pos[None, :] - pos[:, None]  # key - query
    rows = np.clip(offsets, -(max_span - 1), max_span - 1) + max_span - 1
    logits = np.zeros((n, num_heads, length, length))
    for term in terms:
        if term == "content":
            t = np.einsum("nhld,nhmd->nhlm", q, k)
        elif term == "query_rpe":
            t = np.einsum("nhld,lmd->nhlm", q, np.asarray(weights["query_rpe"], np.float64)[rows])
        else:
            t = np.einsum("nhmd,lmd->nhlm", k, np.asarray(weights["key_rpe"], np.float64)[rows])
        logits += batch_norm(t, weights["similarity_bn"][term], (1, num_heads, 1, 1), epsilon)
    if span is not None:
        allowed = np.abs(offsets) <= (span - 1) // 2
        logits = np.where(allowed, logits, -np.inf)
    logits = logits - logits.max(-1, keepdims=True)
    a = np.exp(logits)
    a /= a.sum(-1, keepdims=True)
    out = np.zeros((n, length, v_total))
    for term in retrieve:
        if term == "content":
            r = np.einsum("nhlm,nhmd->nhld", a, v)
        else:
            r = np.einsum("nhlm,lmd->nhld", a, np.asarray(weights["value_rpe"], np.float64)[rows])
        r = r.transpose(0, 2, 1, 3).reshape(n, length, v_total)
        out += batch_norm(r, weights["output_bn"][term], epsilon=epsilon)
    return (out, a) if return_weights else out


def axial_weights_from_layer(layer):
    """The numpy weight dict of a built `keras_axial.layers.AxialAttention`."""
    def bn(layer_bn):
        return {k: np.asarray(getattr(layer_bn, k)) for k in
                ("gamma", "beta", "moving_mean", "moving_variance")}
    weights = {
        "qkv_kernel": np.asarray(layer.qkv_kernel),
        "batch_norm_qkv": bn(layer.qkv_batch_norm),
        "similarity_bn": {t: bn(b) for t, b in layer.similarity_batch_norms.items()},
        "output_bn": {t: bn(b) for t, b in layer.output_batch_norms.items()},
    }
    for name in ("query_rpe", "key_rpe", "value_rpe"):
        if getattr(layer, name) is not None:
            weights[name] = np.asarray(getattr(layer, name))
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
        else:
            value = rng.normal(0.0, 1.0, shape)
        variable.assign(value.astype(variable.dtype))

"""Import weights of deeplab2's axial-attention layers into keras-axial layers.

deeplab2 (google-research/deeplab2) names its variables `<layer name>/<sublayer>/<variable>`,
e.g. `block1/attention/height_axis/qkv_kernel`. `layer_from_deeplab2` takes deeplab2's class
name, its constructor arguments and a dict of arrays named that way (a TensorFlow checkpoint
read with `tf.train.load_checkpoint`, or an `.npz` written from one), and returns the
equivalent keras-axial layer, built and loaded. Its inference output matches deeplab2's.

Semantics carried over (deeplab2 at commit 64bc1c1a, see `tests/convert/fixtures/deeplab2`):

- `AxialAttention`: `qkv_kernel [C, 2K + V]` (query, key, value column blocks; head index the
  slow axis), `batch_norm_qkv`, `batch_norm_similarity` of shape `[terms, 1, heads, 1, 1]`
  (terms in the order content, query rpe, key rpe, only those switched on),
  `batch_norm_retrieved_output` of shape `[terms, 1, heads, 1, value_depth_per_head]`
  (content, value rpe), tables `{query,key,value}_rpe/embeddings [2 * 255 - 1, depth]` indexed
  with `key - query + 254`. deeplab2 only runs global attention (it raises for axes longer
  than `query_shape`), so the imported layer is global unless `span` is given.
- `AxialAttention2D`: height layer, keep rows `::strides`, width layer, keep columns
  `::strides` (imported with `stride_mode="slice"`).
- `AxialBlock` (three filters, `attention_type="axial"`): ReLU on the input; projection
  shortcut (1x1 conv with stride, BN) exactly when the input channels differ from
  `filters_list[2]`, otherwise the identity (subsampled `::strides`); conv1 + BN + ReLU,
  axial attention, ReLU, conv3 + BN; no activation on the output.
"""

import numpy as np

from keras_axial.layers import AxialAttention, AxialAttention2D, AxialBlock

_BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")
_DEEPLAB2_MAX_SPAN = 255

_ATTENTION_SWITCHES = {
    # deeplab2 argument -> keras-axial argument
    "use_query_rpe_similarity": "use_query_rpe",
    "use_key_rpe_similarity": "use_key_rpe",
    "use_content_similarity": "use_content_similarity",
    "retrieve_value_rpe": "retrieve_value_rpe",
    "retrieve_value_content": "retrieve_value_content",
}
# Arguments that only matter for training set-up, initialization or deeplab2 internals; the
# imported inference function does not depend on them.
_IGNORED = {"name", "bn_layer", "query_shape", "memory_flange", "recompute_grad",
            "initialization_std_for_query_key_rpe", "initialization_std_for_value_rpe",
            "conv_kernel_weight_decay"}
_SUPPORTED_CLASSES = ("AxialAttention", "AxialAttention2D", "AxialBlock")


class _Weights:
    """deeplab2-named arrays looked up by their path relative to the imported layer."""

    def __init__(self, weights):
        if not hasattr(weights, "keys"):
            raise TypeError("`weights` must be a dict of arrays named as deeplab2 names its "
                            f"variables. Received: {type(weights).__name__}")
        self.arrays = {}
        for key in weights.keys():
            name = str(key)
            if name.startswith("weights/"):
                name = name[len("weights/"):]
            if name.endswith(":0"):
                name = name[:-2]
            self.arrays[name] = np.asarray(weights[key])
        self.used = set()

    def get(self, path, required=True, mark_used=True):
        matches = [k for k in self.arrays if k == path or k.endswith("/" + path)]
        if len(matches) > 1:
            raise ValueError(f"Several deeplab2 weights end with '{path}': {sorted(matches)}. "
                             "Pass the weights of one layer only.")
        if not matches:
            if not required:
                return None
            raise ValueError(f"The deeplab2 weight '{path}' is missing. Received weights: "
                             f"{sorted(self.arrays)}")
        if mark_used:
            self.used.add(matches[0])
        return self.arrays[matches[0]]

    def peek(self, path, required=True):
        """The array at `path` without counting it as used (for reading shapes)."""
        return self.get(path, required=required, mark_used=False)

    def check_all_used(self):
        unused = sorted(set(self.arrays) - self.used)
        if unused:
            raise ValueError(f"deeplab2 weights not used by the imported layer: {unused}. "
                             "They belong to a different configuration (e.g. a switched-off "
                             "attention term) or to another layer.")


def _assign(variable, value, source):
    value = np.asarray(value)
    if value.size != int(np.prod(variable.shape)):
        raise ValueError(f"deeplab2 weight '{source}' has shape {value.shape}; the layer "
                         f"expects {tuple(variable.shape)} for '{variable.path}'.")
    variable.assign(value.reshape(variable.shape).astype(variable.dtype))


def _check_args(class_name, args, known):
    unknown = sorted(set(args) - set(known) - _IGNORED)
    if unknown:
        raise ValueError(f"Unsupported deeplab2 {class_name} arguments: {unknown}. "
                         f"Supported: {sorted(set(known) | _IGNORED)}")


def _attention_kwargs(args):
    """keras-axial AxialAttention keyword arguments from deeplab2's axial-layer arguments."""
    activation = args.get("self_attention_activation", "softmax")
    if activation != "softmax":
        raise ValueError("Only softmax attention can be imported. Received: "
                         f"self_attention_activation={activation!r}")
    kwargs = {"num_heads": int(args.get("num_heads", 8))}
    for theirs, ours in _ATTENTION_SWITCHES.items():
        kwargs[ours] = bool(args.get(theirs, True))
    return kwargs


def _load_batch_norm(layer, weights, path, value_shape=None):
    for name in _BN_VARIABLES:
        source = f"{path}/{name}"
        value = weights.get(source)
        if value_shape is not None:
            value = np.asarray(value).reshape(value_shape)
        _assign(getattr(layer, name), value, source)


def _load_axial_attention(layer, weights, scope):
    prefix = f"{scope}/" if scope else ""
    _assign(layer.qkv_kernel, weights.get(prefix + "qkv_kernel"), prefix + "qkv_kernel")
    _load_batch_norm(layer.qkv_batch_norm, weights, prefix + "batch_norm_qkv")
    # Stacked per-term batch norms: one row per switched-on term, in deeplab2's order.
    for path, norms in (("batch_norm_similarity", layer.similarity_batch_norms),
                        ("batch_norm_retrieved_output", layer.output_batch_norms)):
        for variable in _BN_VARIABLES:
            source = f"{prefix}{path}/{variable}"
            value = np.asarray(weights.get(source))
            per_term = int(np.prod(next(iter(norms.values())).gamma.shape))
            if value.size != per_term * len(norms):
                raise ValueError(
                    f"deeplab2 weight '{source}' has shape {value.shape}: "
                    f"{value.size / per_term:g} terms of {per_term} values, but the layer "
                    f"has {len(norms)} ({', '.join(norms)}). Check the use_*/retrieve_* "
                    "switches and num_heads.")
            for row, term in zip(value.reshape(len(norms), per_term), norms):
                _assign(getattr(norms[term], variable), row, source)
    for name in ("query_rpe", "key_rpe", "value_rpe"):
        table = getattr(layer, name)
        if table is not None:
            source = f"{prefix}{name}/embeddings"
            _assign(table, weights.get(source), source)


def _table_max_span(weights, scope):
    prefix = f"{scope}/" if scope else ""
    for name in ("query_rpe", "key_rpe", "value_rpe"):
        table = weights.peek(f"{prefix}{name}/embeddings", required=False)
        if table is not None:
            rows = table.shape[0]
            if rows % 2 == 0:
                raise ValueError(f"deeplab2 relative table '{prefix}{name}/embeddings' must "
                                 f"have an odd number of rows. Received: shape {table.shape}")
            return (rows + 1) // 2
    return _DEEPLAB2_MAX_SPAN


def _conv_kernel(weights, path, mark_used=True):
    kernel = weights.get(path, mark_used=mark_used)
    if kernel.ndim != 4 or kernel.shape[:2] != (1, 1):
        raise ValueError(f"deeplab2 weight '{path}' must be a 1x1 convolution kernel "
                         f"[1, 1, in, out]. Received: shape {kernel.shape}")
    return kernel


def _import_axial_attention(args, weights, span, bn_kwargs):
    _check_args("AxialAttention", args,
                ["total_key_depth", "total_value_depth", "num_heads",
                 "self_attention_activation", *_ATTENTION_SWITCHES])
    kernel = weights.peek("qkv_kernel")
    layer = AxialAttention(
        total_key_depth=int(args.get("total_key_depth", 512)),
        total_value_depth=int(args.get("total_value_depth", 1024)),
        span=span, max_span=_table_max_span(weights, ""), axis=1,
        **_attention_kwargs(args), **bn_kwargs)
    layer.build((None, None, kernel.shape[0]))
    _load_axial_attention(layer, weights, "")
    return layer


def _attention_2d_depths(args):
    filters = args.get("filters", 512)
    return (int(round(filters * args.get("key_expansion", 1))),
            int(round(filters * args.get("value_expansion", 2))))


def _import_axial_attention_2d(args, weights, span, bn_kwargs):
    _check_args("AxialAttention2D", args,
                ["strides", "filters", "key_expansion", "value_expansion", "num_heads",
                 "self_attention_activation", *_ATTENTION_SWITCHES])
    key_depth, value_depth = _attention_2d_depths(args)
    kernel = weights.peek("height_axis/qkv_kernel")
    layer = AxialAttention2D(
        key_depth, value_depth, span=span, max_span=_table_max_span(weights, "height_axis"),
        strides=int(args.get("strides", 1)), stride_mode="slice", **_attention_kwargs(args),
        **bn_kwargs)
    layer.build((None, None, None, kernel.shape[0]))
    _load_axial_attention(layer.height_attention, weights, "height_axis")
    _load_axial_attention(layer.width_attention, weights, "width_axis")
    return layer


def _import_axial_block(args, weights, span, bn_kwargs):
    _check_args("AxialBlock", args,
                ["filters_list", "kernel_size", "strides", "atrous_rate", "attention_type",
                 "axial_layer_config", "activation", "drop_path_keep_prob",
                 "use_squeeze_and_excite", "use_sac", "basic_block_second_conv_atrous_rate"])
    filters_list = list(args.get("filters_list", ()))
    if len(filters_list) != 3:
        raise ValueError("Only three-filter (bottleneck) deeplab2 AxialBlocks can be imported. "
                         f"Received: filters_list={filters_list}")
    if args.get("attention_type") != "axial":
        raise ValueError("Only deeplab2 AxialBlocks with attention_type='axial' can be "
                         f"imported. Received: attention_type={args.get('attention_type')!r}")
    for flag in ("use_squeeze_and_excite", "use_sac"):
        if args.get(flag, False):
            raise ValueError(f"deeplab2 AxialBlocks with {flag}=True cannot be imported.")
    if args.get("activation", "relu") != "relu":
        raise ValueError("Only ReLU deeplab2 AxialBlocks can be imported. Received: "
                         f"activation={args.get('activation')!r}")
    config = dict(args.get("axial_layer_config") or {})
    if config.get("double_global_attention", False):
        raise ValueError("double_global_attention has no effect in deeplab2's AxialAttention2D "
                         "and cannot be imported. Received: double_global_attention=True")
    config.pop("double_global_attention", None)
    _check_args("axial_layer_config", config,
                ["key_expansion", "value_expansion", "num_heads", "self_attention_activation",
                 *_ATTENTION_SWITCHES])
    conv1 = _conv_kernel(weights, "conv1_bn_act/conv/kernel", mark_used=False)
    in_channels = conv1.shape[2]
    bottleneck, filters, output = (int(f) for f in filters_list)
    block = AxialBlock(
        filters=filters,
        strides=int(args.get("strides", 1)),
        span=span,
        max_span=_table_max_span(weights, "attention/height_axis"),
        stride_mode="slice",
        bottleneck_expansion=bottleneck / filters,
        key_expansion=config.get("key_expansion", 1),
        value_expansion=config.get("value_expansion", 2),
        output_expansion=output / filters,
        drop_path_rate=1.0 - float(args.get("drop_path_keep_prob", 1.0)),
        use_projection_shortcut=in_channels != output,
        activate_input=True,
        **_attention_kwargs(config),
        **bn_kwargs,
    )
    block.build((None, None, None, in_channels))
    _assign(block.conv1.kernel, _conv_kernel(weights, "conv1_bn_act/conv/kernel"),
            "conv1_bn_act/conv/kernel")
    _load_batch_norm(block.conv1_batch_norm, weights, "conv1_bn_act/batch_norm")
    attention = block.attention
    _load_axial_attention(attention.height_attention, weights, "attention/height_axis")
    _load_axial_attention(attention.width_attention, weights, "attention/width_axis")
    _assign(block.conv3.kernel, _conv_kernel(weights, "conv3_bn/conv/kernel"),
            "conv3_bn/conv/kernel")
    _load_batch_norm(block.conv3_batch_norm, weights, "conv3_bn/batch_norm")
    if block.projection:
        _assign(block.shortcut_conv.kernel, _conv_kernel(weights, "shortcut/conv/kernel"),
                "shortcut/conv/kernel")
        _load_batch_norm(block.shortcut_batch_norm, weights, "shortcut/batch_norm")
    return block


_IMPORTERS = {
    "AxialAttention": _import_axial_attention,
    "AxialAttention2D": _import_axial_attention_2d,
    "AxialBlock": _import_axial_block,
}


def layer_from_deeplab2(class_name, constructor_args, weights, *, span=None,
                        batch_norm_momentum=0.99, batch_norm_epsilon=1e-3,
                        sync_batch_norm=False):
    """Builds the keras-axial equivalent of a deeplab2 layer and loads its weights.

    Args:
        class_name: deeplab2's class name: `"AxialAttention"`, `"AxialAttention2D"` or
            `"AxialBlock"`.
        constructor_args: dict of the deeplab2 constructor arguments (e.g. `filters_list`,
            `strides`, `axial_layer_config` for a block; `total_key_depth`, `num_heads`, the
            `use_*`/`retrieve_*` switches for a layer). Arguments that do not change the
            inference function (`name`, `bn_layer`, `query_shape`, `memory_flange`,
            initialization stds, weight decay, `recompute_grad`) are accepted and ignored;
            unsupported features (sigmoid attention, squeeze-and-excite, SAC, global
            attention blocks) raise `ValueError`.
        weights: dict `{deeplab2 variable name: array}`; names may carry the deeplab2 layer's
            own prefix (`block1/...`, `height_axis/...`), a `weights/` prefix or a `:0`
            suffix. Every array must be used.
        span: None (global, what deeplab2 computes) or an odd local span for the imported
            layer. Defaults to `None`.
        batch_norm_momentum: momentum of the imported batch norms (training only).
            Defaults to `0.99`.
        batch_norm_epsilon: epsilon of deeplab2's batch norms. Defaults to `1e-3` (Keras'
            default, which deeplab2 uses).
        sync_batch_norm: bool. Defaults to `False`.

    Returns:
        A built `AxialAttention` (axis 1, inputs `[batch, length, channels]` or
        `[batch, height, width, channels]`), `AxialAttention2D` or `AxialBlock` with deeplab2's
        weights.

    Example:

    >>> data = np.load("axial_block_stride1.npz")
    >>> weights = {k: data[k] for k in data if k.startswith("weights/")}
    >>> block = layer_from_deeplab2("AxialBlock", {"filters_list": [32, 16, 64],
    ...     "attention_type": "axial", "axial_layer_config": {"num_heads": 2}}, weights)
    >>> outputs = block(data["input"], training=False)
    """
    if class_name not in _IMPORTERS:
        raise ValueError(f"`class_name` must be one of {list(_SUPPORTED_CLASSES)}. "
                         f"Received: class_name={class_name!r}")
    if not hasattr(constructor_args, "get"):
        raise TypeError("`constructor_args` must be a dict of deeplab2 constructor arguments. "
                        f"Received: {type(constructor_args).__name__}")
    weights = _Weights(weights)
    bn_kwargs = {"batch_norm_momentum": batch_norm_momentum,
                 "batch_norm_epsilon": batch_norm_epsilon,
                 "sync_batch_norm": sync_batch_norm}
    layer = _IMPORTERS[class_name](dict(constructor_args), weights, span, bn_kwargs)
    weights.check_all_used()
    return layer

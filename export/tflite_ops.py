"""What is inside a `.tflite` file: its operators (and the allow-list they must stay in), its
signatures and the keras_axial metadata embedded in it.

Reads the flatbuffer with the schema shipped in `ai_edge_litert` (no TensorFlow needed).

The allow-list is the set of TFLite builtin operators keras_axial exports may contain, in
float32, float16, dynamic-range and int8 form. Every one has a reference kernel in the LiteRT
builtin op resolver, so an export runs on any LiteRT build without the Flex (Select TF ops)
delegate or custom-op registration. A Flex op (`FlexConv2D`, ...), any other custom op, or a
builtin outside the list makes `check_operators` fail: a new builtin has to be reviewed (does
it have kernels on the runtimes people deploy to?) and added here on purpose.
"""

import collections
import pathlib

from ai_edge_litert import schema_py_generated as schema

METADATA_NAME = "keras_axial_export"

ALLOWED_OPS = frozenset({
    # Network: convolutions, attention (matmuls, softmax, gathers of relative tables), BN.
    "ADD", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MUL", "SUB",
    "DIV", "RSQRT", "SQRT", "SOFTMAX", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "RELU",
    "RELU6", "TRANSPOSE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION", "PACK",
    "UNPACK", "SPLIT", "SPLIT_V", "SLICE", "STRIDED_SLICE", "GATHER", "GATHER_ND", "TILE",
    "BROADCAST_TO", "BROADCAST_ARGS", "PAD", "PADV2", "SHAPE", "FILL", "ZEROS_LIKE", "RANGE",
    "CAST", "FLOOR", "FLOOR_DIV", "FLOOR_MOD", "MAXIMUM", "MINIMUM", "SELECT", "SELECT_V2",
    "REDUCE_PROD", "REDUCE_MAX", "REDUCE_MIN", "SUM", "EXP", "LOG", "NEG", "ABS",
    "SQUARED_DIFFERENCE", "SQUARE",
    # Comparisons and logic (masks, padding checks, post-processing).
    "EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "LOGICAL_AND",
    "LOGICAL_OR", "LOGICAL_NOT",
    # Post-processing: argmax, top-k centers, histograms, renumbering, the center-search loop.
    "ARG_MAX", "ARG_MIN", "TOPK_V2", "UNSORTED_SEGMENT_SUM", "UNSORTED_SEGMENT_PROD",
    "UNSORTED_SEGMENT_MAX", "SEGMENT_SUM", "CUMSUM",
    "SCATTER_ND", "DYNAMIC_UPDATE_SLICE", "WHILE", "IF", "ONE_HOT",
    # Quantized forms (float16 weights, dynamic range, int8).
    "DEQUANTIZE", "QUANTIZE",
})

_BUILTIN_NAMES = {
    code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}


def _read(model):
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    path = pathlib.Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"TFLite model {str(path)!r} does not exist.")
    return path.read_bytes()


def _model(buffer):
    if len(buffer) < 8 or buffer[4:8] != b"TFL3":
        raise ValueError(
            "Not a TFLite flatbuffer (the file identifier at bytes 4..8 is "
            f"{bytes(buffer[4:8])!r}, expected b'TFL3')."
        )
    return schema.Model.GetRootAs(buffer, 0)


def _operator_name(code):
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == schema.BuiltinOperator.CUSTOM:
        custom = code.CustomCode()
        return "custom:" + (custom.decode("utf-8", "replace") if custom else "?")
    return _BUILTIN_NAMES.get(builtin, f"unknown_builtin:{builtin}")


def list_operators(model):
    """Counts the operators of every subgraph of a TFLite model.

    Args:
        model: path of a `.tflite` file, or its bytes.

    Returns:
        A `collections.Counter` `{name: count}`: builtin names as in the TFLite schema
        (`"CONV_2D"`), custom ops as `"custom:<code>"` (Flex ops are `"custom:FlexConv2D"`).

    Example:
        >>> list_operators("model.tflite").most_common(2)
        [('ADD', 412), ('MUL', 380)]
    """
    flatbuffer = _model(_read(model))
    codes = [_operator_name(flatbuffer.OperatorCodes(i))
             for i in range(flatbuffer.OperatorCodesLength())]
    counts = collections.Counter()
    for s in range(flatbuffer.SubgraphsLength()):
        subgraph = flatbuffer.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            counts[codes[subgraph.Operators(o).OpcodeIndex()]] += 1
    return counts


def disallowed_operators(operators, allowed=ALLOWED_OPS):
    """The operator names of `operators` that are custom (Flex included) or not in `allowed`.

    Args:
        operators: names (a `list_operators` result or any iterable of names).
        allowed: the allowed builtin names. Defaults to `ALLOWED_OPS`.

    Returns:
        A sorted list of names.
    """
    return sorted(
        name for name in set(operators) if name.startswith("custom:") or name not in allowed
    )


def check_operators(model, allowed=ALLOWED_OPS):
    """Raises `ValueError` naming every operator of `model` outside the allow-list.

    Args:
        model: path of a `.tflite` file, or its bytes.
        allowed: the allowed builtin names. Defaults to `ALLOWED_OPS`.

    Returns:
        The `list_operators` counts when every operator is allowed.
    """
    operators = list_operators(model)
    bad = disallowed_operators(operators, allowed)
    if bad:
        flex = [name for name in bad if name.startswith("custom:Flex")]
        raise ValueError(
            f"The TFLite model uses operators outside the builtin allow-list: "
            f"{', '.join(f'{name} (x{operators[name]})' for name in bad)}. "
            + ("Flex ops need the Select-TF-ops delegate, which keras_axial exports must not "
               "need. " if flex else "")
            + "Expected only TFLite builtins from export.tflite_ops.ALLOWED_OPS."
        )
    return operators


def signature_keys(model):
    """The signature keys of a TFLite model, in file order."""
    flatbuffer = _model(_read(model))
    return [flatbuffer.SignatureDefs(i).SignatureKey().decode("utf-8")
            for i in range(flatbuffer.SignatureDefsLength())]


def read_embedded_metadata(model, name=METADATA_NAME):
    """The bytes of the flatbuffer metadata entry `name`, or None when there is none."""
    buffer = _read(model)
    flatbuffer = _model(buffer)
    for i in range(flatbuffer.MetadataLength()):
        entry = flatbuffer.Metadata(i)
        if entry.Name() and entry.Name().decode("utf-8") == name:
            return flatbuffer.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def embed_metadata(model, data, name=METADATA_NAME):
    """Returns the bytes of `model` with a metadata entry `name` holding `data` (bytes).

    An existing entry of that name is replaced. Uses the flatbuffer object API: the whole
    model is unpacked and packed again, operators and weights unchanged.
    """
    import flatbuffers

    buffer = _read(model)
    _model(buffer)
    unpacked = schema.ModelT.InitFromPackedBuf(buffer, 0)
    unpacked.metadata = [m for m in (unpacked.metadata or [])
                         if (m.name.decode() if isinstance(m.name, bytes) else m.name) != name]
    entry_buffer = schema.BufferT()
    entry_buffer.data = list(data) if len(data) < 64 else _as_uint8(data)
    unpacked.buffers.append(entry_buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(unpacked.buffers) - 1
    unpacked.metadata.append(entry)
    builder = flatbuffers.Builder(len(buffer) + len(data) + 1024)
    builder.Finish(unpacked.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _as_uint8(data):
    import numpy as np

    return np.frombuffer(bytes(data), dtype=np.uint8)


def count_int8_operators(model):
    """How many operators produce an int8 tensor (the quantized part of a model)."""
    flatbuffer = _model(_read(model))
    count = 0
    for s in range(flatbuffer.SubgraphsLength()):
        subgraph = flatbuffer.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            outputs = [operator.Outputs(i) for i in range(operator.OutputsLength())]
            if any(i >= 0 and subgraph.Tensors(i).Type() == schema.TensorType.INT8
                   for i in outputs):
                count += 1
    return count

"""int8 calibration of a TFLite model whose post-processing stays in float32.

`TFLiteConverter`'s own calibration crashes (segmentation fault) on the end-to-end graph: its
calibrator logs the outputs of every WHILE op, and the WHILE kernel frees the outputs of loop
variables that its body passes through unchanged, which the post-processing's loops (over
blocks of centers and of pixels) have (tensorflow/tensorflow#75140, open in TF 2.21). Besides,
post-processing math in int8 would be wrong by design: the center NMS compares heatmap values
with their max-pool for equality, which quantization turns into plateaus of ties.

So calibration is done here: the float32 model runs in LiteRT with a min and a max reduction
added after each of the network's float tensors (the whole `network` signature; in
`serving_default`, the tensors under the model's name scope), their value ranges over the
representative images are written into the tensors' quantization parameters (min / max, what
the converter's calibrator writes), and the TensorFlow MLIR quantizer turns the calibrated
model into int8 where kernels exist. Only feature maps (rank >= 3) are calibrated; tensors
without a range (post-processing, WHILE bodies, scalars and vectors of shape arithmetic) stay
float32.
"""

import numpy as np


def _subgraph_of_signature(model):
    return {
        signature.signatureKey.decode(): signature.subgraphIndex
        for signature in model.signatureDefs
    }


def _builtin(model, operator):
    code = model.operatorCodes[operator.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _candidate_tensors(model, subgraph, schema, network_scope, whole_subgraph):
    """Indices of the float feature maps of `subgraph` whose ranges calibration records."""
    # Divisors are not calibrated (see quantize_int8: DIV stays float32).
    divisors = {
        operator.inputs[1] for operator in subgraph.operators
        if _builtin(model, operator) == schema.BuiltinOperator.DIV
    }
    candidates = []
    for tensor_index, tensor in enumerate(subgraph.tensors):
        if tensor.type != schema.TensorType.FLOAT32:
            continue
        if model.buffers[tensor.buffer].data is not None or tensor_index in divisors:
            # Constants (weights are quantized from their values) and divisors.
            continue
        if tensor.shape is None or len(tensor.shape) < 3:
            # Scalars and vectors are shape arithmetic (resize positions and weights,
            # padding): quantized, they would be wrong at any size but the calibration's.
            continue
        if not whole_subgraph and not tensor.name.decode().startswith(network_scope):
            continue
        candidates.append(tensor_index)
    return candidates


def _pack(model, size_hint):
    """The bytes of a TFLite `ModelT`."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _opcode_index(model, schema, builtin):
    """Index of `builtin` in the model's operator codes, added if missing."""
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(
        builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _add_range_probes(model, schema, subgraph, candidates):
    """Adds a REDUCE_MIN and a REDUCE_MAX of each candidate, right after its producer.

    Returns `{tensor_index: (min_output, max_output)}`; the scalar outputs are subgraph
    outputs, so they can be read after a run, while the feature maps themselves keep their
    normal lifetime in the memory plan.
    """
    reducers = {
        "min": _opcode_index(model, schema, schema.BuiltinOperator.REDUCE_MIN),
        "max": _opcode_index(model, schema, schema.BuiltinOperator.REDUCE_MAX),
    }
    axes_of_rank = {}
    empty = schema.BufferT()  # the buffer of computed tensors
    model.buffers.append(empty)
    empty_index = len(model.buffers) - 1

    def axes(rank):
        if rank not in axes_of_rank:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.arange(rank, dtype=np.int32).tobytes(), np.uint8)
            model.buffers.append(buffer)
            tensor = schema.TensorT()
            tensor.shape = np.array([rank], np.int32)
            tensor.type = schema.TensorType.INT32
            tensor.buffer = len(model.buffers) - 1
            tensor.name = f"calibration/axes_{rank}".encode()
            subgraph.tensors.append(tensor)
            axes_of_rank[rank] = len(subgraph.tensors) - 1
        return axes_of_rank[rank]

    def probe(tensor_index, kind):
        axes_index = axes(len(subgraph.tensors[tensor_index].shape))
        output = schema.TensorT()
        output.shape = np.array([], np.int32)
        output.type = schema.TensorType.FLOAT32
        output.buffer = empty_index
        output.name = f"calibration/{kind}_{tensor_index}".encode()
        subgraph.tensors.append(output)
        output_index = len(subgraph.tensors) - 1
        operator = schema.OperatorT()
        operator.opcodeIndex = reducers[kind]
        operator.inputs = np.array([tensor_index, axes_index], np.int32)
        operator.outputs = np.array([output_index], np.int32)
        operator.builtinOptionsType = schema.BuiltinOptions.ReducerOptions
        operator.builtinOptions = schema.ReducerOptionsT()
        operator.builtinOptions.keepDims = False
        return operator, output_index

    wanted = set(candidates)
    probes = {}
    operators = []

    def add(tensor_index):
        low, low_output = probe(tensor_index, "min")
        high, high_output = probe(tensor_index, "max")
        operators.extend([low, high])
        probes[tensor_index] = (low_output, high_output)

    for tensor_index in subgraph.inputs:
        if tensor_index in wanted:
            add(tensor_index)
    for operator in subgraph.operators:
        operators.append(operator)
        for tensor_index in operator.outputs:
            if tensor_index in wanted and tensor_index not in probes:
                add(tensor_index)
    subgraph.operators = operators
    subgraph.outputs = list(subgraph.outputs) + [
        output for pair in probes.values() for output in pair]
    return probes


def record_ranges(float_model, samples, network_scope):
    """Min / max of the network's float tensors over `samples`.

    Each recorded tensor gets a REDUCE_MIN and a REDUCE_MAX right after the operator that
    computes it, whose scalar results are graph outputs. Keeping the feature maps themselves
    (LiteRT's `experimental_preserve_all_tensors`, or making them graph outputs) is not an
    option: with the export's dynamic shapes, the memory arena then grows and is copied after
    every dynamically shaped operator, and a first run of a full-size Axial-DeepLab takes hours.

    Args:
        float_model: bytes of a float32 TFLite model.
        samples: `[(signature_key, images)]` to run.
        network_scope: name prefix of the network's tensors (the Keras model's name).

    Returns:
        `{(subgraph_index, tensor_index): (min, max)}`.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    model = schema.ModelT.InitFromPackedBuf(float_model, 0)
    subgraphs = _subgraph_of_signature(model)
    probes = {}
    for signature in sorted({signature for signature, _ in samples}):
        index = subgraphs[signature]
        subgraph = model.subgraphs[index]
        candidates = _candidate_tensors(model, subgraph, schema, network_scope,
                                        whole_subgraph=signature == "network")
        probes[index] = _add_range_probes(model, schema, subgraph, candidates)
    interpreter = Interpreter(
        model_content=_pack(model, len(float_model)),
        # No delegate: the builtin kernels compute each recorded tensor as the graph defines
        # it (a delegate may fuse operators across the recorded tensors).
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    ranges = {}
    for signature, images in samples:
        index = subgraphs[signature]
        interpreter.get_signature_runner(signature)(images=images)
        for tensor_index, (low_output, high_output) in probes[index].items():
            low = float(interpreter.get_tensor(low_output, index))
            high = float(interpreter.get_tensor(high_output, index))
            if not (np.isfinite(low) and np.isfinite(high)):
                continue  # empty (the reductions' identities) or not finite
            key = (index, tensor_index)
            if key in ranges:
                low, high = min(low, ranges[key][0]), max(high, ranges[key][1])
            ranges[key] = (low, high)
    return ranges


def calibrated_model(float_model, ranges):
    """`float_model` with `ranges` written as the tensors' quantization min / max."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(float_model, 0)
    for (subgraph_index, tensor_index), (low, high) in ranges.items():
        parameters = schema.QuantizationParametersT()
        parameters.min = [low]
        parameters.max = [high]
        model.subgraphs[subgraph_index].tensors[tensor_index].quantization = parameters
    return _pack(model, len(float_model))


def quantize_int8(float_model, samples, network_scope):
    """int8 weights and network activations, float32 elsewhere (see the module docstring).

    Args:
        float_model: bytes of the float32 TFLite model (both signatures).
        samples: `[(signature_key, images)]` representative inputs.
        network_scope: name prefix of the network's tensors.

    Returns:
        The bytes of the quantized model.
    """
    from tensorflow.lite.python import convert

    ranges = record_ranges(float_model, samples, network_scope)
    if not ranges:
        raise ValueError(
            f"No float tensor of the network (name scope {network_scope!r}) was found to "
            "calibrate."
        )
    # DIV stays float32: an int8 divisor that rounds to its zero point is a division by
    # zero, which the int8 DIV kernel refuses at run time (the attention's softmax
    # normalisation does this on small inputs).
    return convert.mlir_quantize(calibrated_model(float_model, ranges),
                                 denylisted_ops=["DIV"])

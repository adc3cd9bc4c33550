"""int8 calibration of a TFLite model whose post-processing stays in float32.

`TFLiteConverter`'s own calibration crashes (segmentation fault) on the end-to-end graph: its
calibrator logs the outputs of every WHILE op, and the WHILE kernel frees the outputs of loop
variables that its body passes through unchanged, which the post-processing's loops (over
blocks of centers and of pixels) have (tensorflow/tensorflow#75140, open in TF 2.21). Besides,
post-processing math in int8 would be wrong by design: the center NMS compares heatmap values
with their max-pool for equality, which quantization turns into plateaus of ties.

So calibration is done here: the float32 model runs in LiteRT with every intermediate tensor
preserved, the value range of every float tensor of the network (the whole `network`
signature; in `serving_default`, the tensors under the model's name scope) is recorded over
the representative images, written into the tensors' quantization parameters (min / max, what
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


def record_ranges(float_model, samples, network_scope):
    """Min / max of the network's float tensors over `samples`.

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
    interpreter = Interpreter(
        model_content=float_model,
        experimental_preserve_all_tensors=True,
        # No delegate: XNNPACK fuses operators and would hide their outputs.
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    ranges = {}
    for signature, images in samples:
        index = subgraphs[signature]
        subgraph = model.subgraphs[index]
        # Divisors are not calibrated (see quantize_int8: DIV stays float32).
        divisors = {
            operator.inputs[1] for operator in subgraph.operators
            if _builtin(model, operator) == schema.BuiltinOperator.DIV
        }
        interpreter.get_signature_runner(signature)(images=images)
        for tensor_index, tensor in enumerate(subgraph.tensors):
            if tensor.type != schema.TensorType.FLOAT32:
                continue
            if model.buffers[tensor.buffer].data is not None:
                continue  # a constant (weights are quantized from their values)
            if tensor_index in divisors:
                continue
            if tensor.shape is None or len(tensor.shape) < 3:
                # Scalars and vectors are shape arithmetic (resize positions and weights,
                # padding): quantized, they would be wrong at any size but the calibration's.
                continue
            name = tensor.name.decode()
            if signature != "network" and not name.startswith(network_scope):
                continue
            value = interpreter.get_tensor(tensor_index, index)
            if value.size == 0 or not np.all(np.isfinite(value)):
                continue
            low, high = float(value.min()), float(value.max())
            key = (index, tensor_index)
            if key in ranges:
                low, high = min(low, ranges[key][0]), max(high, ranges[key][1])
            ranges[key] = (low, high)
    return ranges


def calibrated_model(float_model, ranges):
    """`float_model` with `ranges` written as the tensors' quantization min / max."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(float_model, 0)
    for (subgraph_index, tensor_index), (low, high) in ranges.items():
        parameters = schema.QuantizationParametersT()
        parameters.min = [low]
        parameters.max = [high]
        model.subgraphs[subgraph_index].tensors[tensor_index].quantization = parameters
    builder = flatbuffers.Builder(len(float_model) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


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

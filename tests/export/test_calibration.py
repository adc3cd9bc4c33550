"""int8 calibration that survives WHILE loops and leaves the post-processing in float32."""

import numpy as np
import tensorflow as tf

from export import calibration
from export import tflite_ops


class _Toy(tf.Module):
    """A conv 'network' (name scope toy_network) + a post-processing WHILE loop whose body
    passes a loop variable through unchanged: what crashes TFLite's own calibrator."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(np.random.default_rng(0).normal(size=(3, 3, 3, 4)),
                                  dtype=tf.float32)

    def network(self, images):
        with tf.name_scope("toy_network"):
            features = tf.nn.relu(tf.nn.conv2d(images / 127.5 - 1.0, self.kernel, 1, "SAME"))
            return tf.nn.conv2d(features, tf.transpose(self.kernel, [0, 1, 3, 2])[..., :2],
                                1, "SAME")

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32,
                                                name="images")], autograph=False)
    def serve(self, images):
        logits = self.network(images)
        scores = tf.reduce_max(logits, axis=-1)
        _, best = tf.while_loop(
            lambda i, best: i < 3,
            lambda i, best: (i + 1, tf.maximum(best, scores * tf.cast(i, tf.float32))),
            (tf.constant(0), tf.zeros_like(scores)),
        )
        return {"labels": tf.argmax(logits, axis=-1, output_type=tf.int32), "best": best}


def _toy_float_model(tmp_path):
    module = _Toy()
    tf.saved_model.save(module, str(tmp_path / "toy"),
                        signatures={"serving_default": module.serve.get_concrete_function()})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "toy"))
    return converter.convert()


def _toy_samples(sizes=(16, 16, 16)):
    rng = np.random.default_rng(1)
    return [("serving_default", rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32))
            for size in sizes]


def test_recorded_ranges_are_the_min_and_max_of_each_network_tensor(tmp_path):
    """The min / max probes give what reading every tensor after each run gives."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    float_model = _toy_float_model(tmp_path)
    samples = _toy_samples(sizes=(16, 23))  # two sizes: ranges merge across runs
    ranges = calibration.record_ranges(float_model, samples, "toy_network")
    model = schema.ModelT.InitFromPackedBuf(float_model, 0)
    names = {key: model.subgraphs[key[0]].tensors[key[1]].name.decode() for key in ranges}
    assert ranges and all(name.startswith("toy_network") for name in names.values())
    interpreter = Interpreter(
        model_content=float_model, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    expected = {}
    for signature, images in samples:
        interpreter.get_signature_runner(signature)(images=images)
        for subgraph_index, tensor_index in ranges:
            value = interpreter.get_tensor(tensor_index, subgraph_index)
            low, high = expected.get((subgraph_index, tensor_index), (np.inf, -np.inf))
            expected[subgraph_index, tensor_index] = (min(low, value.min()),
                                                      max(high, value.max()))
    assert ranges.keys() == expected.keys()
    for key, (low, high) in ranges.items():
        np.testing.assert_allclose((low, high), expected[key], rtol=1e-6, err_msg=names[key])
    # The float model given in is not changed.
    assert calibration.record_ranges(float_model, samples, "toy_network") == ranges


def test_int8_calibration_with_while_loops(tmp_path):
    float_model = _toy_float_model(tmp_path)
    assert "WHILE" in tflite_ops.list_operators(float_model)
    samples = _toy_samples()
    ranges = calibration.record_ranges(float_model, samples, "toy_network")
    assert ranges and all(low <= high for low, high in ranges.values())
    quantized = calibration.quantize_int8(float_model, samples, "toy_network")
    operators = tflite_ops.check_operators(quantized)
    assert operators["CONV_2D"] == 2 and "QUANTIZE" in operators
    assert tflite_ops.count_int8_operators(quantized) >= 2  # the convolutions
    from ai_edge_litert.interpreter import Interpreter

    images = samples[0][1]
    float_out = Interpreter(model_content=float_model).get_signature_runner()(images=images)
    int8_out = Interpreter(model_content=quantized).get_signature_runner()(images=images)
    # The loop ran in float32 on dequantized scores: same relation as in the float model.
    np.testing.assert_allclose(int8_out["best"], float_out["best"],
                               atol=0.05 * np.abs(float_out["best"]).max())
    assert (int8_out["labels"] == float_out["labels"]).mean() > 0.8

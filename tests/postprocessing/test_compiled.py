"""The post-processing inside `tf.function` (unknown shapes), under XLA, and as a TFLite model."""

import numpy as np
import pytest
import tensorflow as tf

from keras_axial.postprocessing import PostProcessingConfig
from keras_axial.postprocessing import panoptic_deeplab_postprocess
from tests.postprocessing.test_panoptic_deeplab import make_inputs
from tests.postprocessing.test_panoptic_deeplab import random_inputs
from tests.postprocessing.test_panoptic_deeplab import touching_instances

NUM_CLASSES = 6
CONFIG = PostProcessingConfig(
    thing_class_ids=[1, 3, 4],
    label_divisor=1000,
    void_label=255,
    nms_kernel=5,
    keep_k_centers=16,
    stuff_area_limit=12,
)
SIGNATURE = [
    tf.TensorSpec([None, None, None, NUM_CLASSES], tf.float32, name="semantic_logits"),
    tf.TensorSpec([None, None, None, 1], tf.float32, name="center_heatmap"),
    tf.TensorSpec([None, None, None, 2], tf.float32, name="offsets"),
]
# Different batch sizes and sizes (one smaller than keep_k_centers pixels).
SHAPES = [(2, 17, 23), (1, 33, 9), (3, 3, 4)]


def postprocess(logits, heatmap, offsets):
    return panoptic_deeplab_postprocess(logits, heatmap, offsets, **CONFIG.as_kwargs())


def assert_same(actual, expected):
    for key, value in expected.items():
        value = np.asarray(value)
        if value.dtype == np.float32:
            np.testing.assert_allclose(actual[key], value, rtol=1e-6, atol=1e-7, err_msg=key)
        else:
            np.testing.assert_array_equal(actual[key], value, err_msg=key)


def tied_inputs():
    """Equal center scores and a pixel equidistant from two centers: tie-breaking must match."""
    peaks = [(1, 1, 0.5), (1, 9, 0.9), (5, 5, 0.5), (5, 1, 0.5), (9, 9, 0.5)]
    semantic = np.zeros((1, 11, 11), "int32")
    owner = np.full((1, 11, 11), -1)
    for index, (y, x, _) in enumerate(peaks):
        owner[0, max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = index
    semantic[owner >= 0] = 1
    logits, heatmap, offsets = make_inputs(semantic, [peaks], owner, NUM_CLASSES)
    offsets[0, 1, 2] = [3 - 1, 3 - 2]  # to (3, 3): as far from (1, 1) as from (5, 5)
    return logits, heatmap, offsets


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(3)
    inputs = [random_inputs(rng, *shape, NUM_CLASSES) for shape in SHAPES]
    inputs.append(tied_inputs())
    inputs.append(make_inputs(*touching_instances(), NUM_CLASSES))
    return [(x, postprocess(*x)) for x in inputs]


def test_one_trace_with_unknown_batch_height_and_width(examples):
    function = tf.function(postprocess, input_signature=SIGNATURE)
    for inputs, expected in examples:
        assert_same(function(*inputs), expected)
    assert len(function._list_all_concrete_functions()) == 1


def test_xla(examples):
    function = tf.function(postprocess, jit_compile=True)
    inputs, expected = examples[len(SHAPES)]  # the ties
    assert_same(function(*inputs), expected)


def test_tflite_builtins_only_with_dynamic_shapes(examples):
    from ai_edge_litert.interpreter import Interpreter

    module = tf.Module()
    module.postprocess = tf.function(postprocess, input_signature=SIGNATURE)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.postprocess.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()
    # Output tensor of each signature key (a runner keeps views on the interpreter's buffers, so
    # it gets its own interpreter).
    outputs = Interpreter(model_content=model).get_signature_runner().get_output_details()
    output_index = {key: details["index"] for key, details in outputs.items()}
    interpreter = Interpreter(model_content=model)
    inputs_by_name = {d["name"]: d["index"] for d in interpreter.get_input_details()}
    for inputs, expected in examples:
        for spec, value in zip(SIGNATURE, inputs):
            index = next(i for name, i in inputs_by_name.items() if spec.name in name)
            interpreter.resize_tensor_input(index, value.shape)
        interpreter.allocate_tensors()
        for spec, value in zip(SIGNATURE, inputs):
            index = next(i for name, i in inputs_by_name.items() if spec.name in name)
            interpreter.set_tensor(index, value)
        interpreter.invoke()
        actual = {key: interpreter.get_tensor(index) for key, index in output_index.items()}
        assert_same(actual, expected)

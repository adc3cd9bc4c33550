"""resize_bilinear_aligned: aligned-corner semantics, symbolic sizes, XLA, dtypes, TFLite."""

import numpy as np
import pytest
import tensorflow as tf

from keras_axial.layers import resize_bilinear_aligned


def reference(images, size):
    images = np.asarray(images, np.float64)

    def axis_resize(x, axis, out):
        n = x.shape[axis]
        pos = np.arange(out) * ((n - 1) / (out - 1) if out > 1 else 0.0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        w = (pos - lo).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
        return np.take(x, lo, axis) * (1 - w) + np.take(x, hi, axis) * w

    return axis_resize(axis_resize(images, 1, size[0]), 2, size[1])


@pytest.mark.parametrize("in_size, out_size", [
    ((5, 9), (17, 33)), ((17, 33), (5, 9)), ((4, 6), (4, 6)), ((3, 3), (1, 7)), ((1, 4), (5, 2))])
def test_matches_aligned_corner_formula(in_size, out_size):
    x = np.random.default_rng(0).normal(size=(2, *in_size, 3)).astype("float32")
    y = np.asarray(resize_bilinear_aligned(x, out_size))
    np.testing.assert_allclose(y, reference(x, out_size), atol=1e-5)
    np.testing.assert_allclose(y[:, 0, 0], x[:, 0, 0], atol=1e-6)  # corners coincide
    if min(out_size) > 1:
        np.testing.assert_allclose(y[:, -1, -1], x[:, -1, -1], atol=1e-5)


def test_symbolic_sizes_xla_and_dtypes():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3]),
                                  tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)],
                 jit_compile=True)
    def resize(images, height, width):
        return resize_bilinear_aligned(images, (height, width))

    x = np.random.default_rng(1).normal(size=(1, 9, 5, 3)).astype("float32")
    np.testing.assert_allclose(resize(x, 17, 9), reference(x, (17, 9)), atol=1e-5)
    like = tf.zeros((1, 33, 17, 1))
    np.testing.assert_allclose(resize_bilinear_aligned(x, tf.shape(like)[1:3]),
                               reference(x, (33, 17)), atol=1e-5)
    half = resize_bilinear_aligned(tf.cast(x, tf.bfloat16), (17, 9))
    assert half.dtype == tf.bfloat16
    ints = resize_bilinear_aligned(np.arange(4, dtype="int32").reshape(1, 2, 2, 1), (3, 3))
    assert ints.dtype == tf.float32
    np.testing.assert_allclose(np.asarray(ints)[0, :, :, 0],
                               [[0, .5, 1], [1, 1.5, 2], [2, 2.5, 3]])


def test_converts_to_tflite_builtins(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    @tf.function(input_signature=[tf.TensorSpec([1, 5, 9, 2])])
    def upsample(images):
        return resize_bilinear_aligned(images, (9, 17))

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [upsample.get_concrete_function()], upsample)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    x = np.random.default_rng(2).normal(size=(1, 5, 9, 2)).astype("float32")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(y, reference(x, (9, 17)), atol=1e-5)


@pytest.mark.parametrize("images, size, match", [
    (np.zeros((2, 3, 3)), (4, 4), "images"),
    (np.zeros((1, 3, 3, 1)), (4,), "size"),
    (np.zeros((1, 3, 3, 1)), (0, 4), r"size\[0\]=0"),
])
def test_argument_validation(images, size, match):
    with pytest.raises(ValueError, match=match):
        resize_bilinear_aligned(images, size)

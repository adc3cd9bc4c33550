"""The operator allow-list: it passes builtin-only models and catches Flex / custom ops."""

import pytest
import tensorflow as tf

from export import tflite_ops


def _convert(function, select_tf_ops):
    concrete = function.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], function)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
        [tf.lite.OpsSet.SELECT_TF_OPS] if select_tf_ops else [])
    return converter.convert()


@tf.function(input_signature=[tf.TensorSpec([None, 4, 4], tf.float32)])
def _with_flex_op(x):
    # Cholesky has no TFLite builtin: it converts only as the Flex op FlexCholesky.
    return tf.linalg.cholesky(tf.matmul(x, x, transpose_b=True) + tf.eye(4)) + 1.0


@tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
def _builtin_only(x):
    return tf.nn.softmax(x * 2.0 + 1.0)


def test_builtin_model_passes_and_is_listed():
    flatbuffer = _convert(_builtin_only, select_tf_ops=False)
    operators = tflite_ops.check_operators(flatbuffer)
    assert set(operators) <= tflite_ops.ALLOWED_OPS
    assert operators["SOFTMAX"] == 1


def test_flex_op_fails_the_check():
    with pytest.raises(Exception, match="Cholesky"):
        _convert(_with_flex_op, select_tf_ops=False)  # builtins only: the converter refuses
    flatbuffer = _convert(_with_flex_op, select_tf_ops=True)
    assert "custom:FlexCholesky" in tflite_ops.list_operators(flatbuffer)
    with pytest.raises(ValueError, match=r"custom:FlexCholesky \(x1\).*Select-TF-ops"):
        tflite_ops.check_operators(flatbuffer)


def test_builtin_outside_the_allow_list_fails():
    flatbuffer = _convert(_builtin_only, select_tf_ops=False)
    with pytest.raises(ValueError, match=r"SOFTMAX \(x1\)"):
        tflite_ops.check_operators(flatbuffer, allowed=tflite_ops.ALLOWED_OPS - {"SOFTMAX"})


def test_not_a_tflite_file(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ValueError, match="Not a TFLite flatbuffer"):
        tflite_ops.list_operators(tmp_path / "model.tflite")
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        tflite_ops.list_operators(tmp_path / "missing.tflite")


def test_embedded_metadata_round_trip():
    flatbuffer = _convert(_builtin_only, select_tf_ops=False)
    assert tflite_ops.read_embedded_metadata(flatbuffer) is None
    once = tflite_ops.embed_metadata(flatbuffer, b'{"a": 1}' * 20)
    twice = tflite_ops.embed_metadata(once, b'{"b": 2}')
    assert tflite_ops.read_embedded_metadata(twice) == b'{"b": 2}'
    assert tflite_ops.list_operators(twice) == tflite_ops.list_operators(flatbuffer)

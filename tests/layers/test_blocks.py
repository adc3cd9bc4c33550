"""AxialAttention2D, AxialBlock, BottleneckBlock and the stems: numerics, striding,
injected batch-norm settings, validation, M-Adds."""

import keras
import numpy as np
import pytest

from keras_axial import layers
from tests.layers.helpers import random_inputs
from tests.layers.numpy_axial import (axial_attention_2d, axial_block, axial_weights_from_layer,
                                      block_weights_from_layer, randomize_layer)


@pytest.mark.parametrize("strides, stride_mode, span, shape", [
    (1, "pool", None, (2, 7, 6, 8)),
    (2, "pool", 5, (2, 9, 8, 8)),     # odd and even lengths: ceil(n / 2)
    (2, "slice", None, (1, 9, 7, 8)),
    (3, "pool", 3, (1, 10, 8, 8)),
])
def test_attention_2d_matches_reference(strides, stride_mode, span, shape):
    layer = layers.AxialAttention2D(8, 12, num_heads=2, span=span, strides=strides,
                                    stride_mode=stride_mode)
    x = random_inputs(shape)
    layer(x)
    randomize_layer(layer, 3)
    expected = axial_attention_2d(
        x, axial_weights_from_layer(layer.height_attention),
        axial_weights_from_layer(layer.width_attention), 2, strides, stride_mode, span=span,
        max_span=layer.height_attention.table_max_span)
    outputs = np.asarray(layer(x))
    assert outputs.shape == layer.compute_output_shape(shape)
    np.testing.assert_allclose(outputs, expected, atol=3e-5)


@pytest.mark.parametrize("strides, stride_mode, channels", [
    (1, "pool", 8), (2, "pool", 8), (2, "slice", 16), (1, "slice", 16)])
def test_axial_block_matches_reference(strides, stride_mode, channels):
    block = layers.AxialBlock(4, num_heads=2, span=5, strides=strides, stride_mode=stride_mode)
    x = random_inputs((2, 9, 7, channels))
    block(x)
    randomize_layer(block, 4)
    assert block.projection == (channels != 16 or strides != 1)
    expected = axial_block(x, block_weights_from_layer(block), 2, strides, stride_mode,
                           projection=block.projection, span=5,
                           max_span=block.attention.height_attention.table_max_span)
    np.testing.assert_allclose(block(x), expected, atol=5e-5)


def test_blocks_start_as_their_shortcut():
    x = random_inputs((2, 8, 8, 16))
    for block in (layers.AxialBlock(4, num_heads=2), layers.BottleneckBlock(4)):
        np.testing.assert_allclose(block(x), np.maximum(x, 0.0), atol=1e-6)
        assert np.all(np.asarray(block.conv3_batch_norm.gamma) == 0.0)


def test_block_widths_and_sublayer_names():
    block = layers.AxialBlock(16, num_heads=8, span=65)
    block.build((None, 33, 33, 32))
    attention = block.attention
    assert block.conv1.filters == 32 and block.conv3.filters == 64
    assert attention.height_attention.total_key_depth == 16
    assert attention.width_attention.total_value_depth == 32
    paths = {v.path for v in block.weights}
    assert "axial_block/attention/height_attention/qkv_kernel" in paths
    assert "axial_block/attention/width_attention/value_rpe" in paths
    assert "axial_block/shortcut_conv/kernel" in paths
    bottleneck = layers.BottleneckBlock(16, strides=2, dilation_rate=1)
    bottleneck.build((None, 33, 33, 64))
    assert bottleneck.conv2.kernel_size == (3, 3) and bottleneck.conv2.strides == (2, 2)
    assert bottleneck.compute_output_shape((None, 33, 33, 64)) == (None, 17, 17, 64)


@pytest.mark.parametrize("factory, shape", [
    (lambda **bn: layers.AxialBlock(4, num_heads=2, **bn), (1, 5, 5, 8)),
    (lambda **bn: layers.BottleneckBlock(4, **bn), (1, 5, 5, 8)),
    (lambda **bn: layers.ConvStem(8, **bn), (1, 9, 9, 3)),
    (lambda **bn: layers.InceptionStem((4, 4, 8), **bn), (1, 9, 9, 3)),
    (lambda **bn: layers.FullAxialStem(filters=2, num_heads=2, span=3, **bn), (1, 9, 9, 3)),
])
def test_batch_norm_settings_reach_every_batch_norm(factory, shape):
    layer = factory(batch_norm_momentum=0.9, batch_norm_epsilon=1e-5, sync_batch_norm=True)
    layer.build(shape)
    norms = [s for s in layer._flatten_layers() if isinstance(s, keras.layers.BatchNormalization)]
    assert norms
    for norm in norms:
        assert (norm.momentum, norm.epsilon, norm.synchronized) == (0.9, 1e-5, True), norm.name


def test_stems_shapes_and_madds():
    conv = layers.ConvStem(64)
    assert conv.compute_output_shape((2, 224, 224, 3)) == (2, 56, 56, 64)
    assert conv.compute_madds((2, 224, 224, 3)) == 2 * 112 * 112 * 49 * 3 * 64
    inception = layers.InceptionStem()
    assert inception.compute_output_shape((1, 1025, 2049, 3)) == (1, 257, 513, 128)
    assert inception.compute_madds((1, 65, 65, 3)) == 33 * 33 * 9 * (3 * 64 + 64 * 64 + 64 * 128)
    assert layers.InceptionStem(use_max_pool=False).compute_output_shape(
        (1, 65, 65, 3)) == (1, 33, 33, 128)
    full = layers.FullAxialStem(filters=4, span=7, num_heads=2)
    x = random_inputs((1, 18, 14, 3))
    assert np.asarray(full(x)).shape == full.compute_output_shape(x.shape) == (1, 5, 4, 16)
    assert full.compute_madds(x.shape) == sum(
        b.compute_madds(s) for b, s in zip(full.blocks, [(1, 18, 14, 3), (1, 9, 7, 16),
                                                          (1, 9, 7, 16)]))
    # The first stem block reads the (signed) image: no ReLU on its input.
    assert not full.blocks[0].activate_input and full.blocks[1].activate_input


def test_block_madds():
    block = layers.AxialBlock(32, strides=2, span=9)
    shape = (2, 17, 17, 64)
    attention = layers.AxialAttention2D(32, 64, span=9, strides=2)
    expected = (2 * 17 * 17 * 64 * 64 + attention.compute_madds((2, 17, 17, 64))
                + 2 * 9 * 9 * 64 * 128 + 2 * 9 * 9 * 64 * 128)
    assert block.compute_madds(shape) == expected
    height = layers.AxialAttention(32, 64, span=9, axis=1).compute_madds((2, 17, 17, 64))
    width = layers.AxialAttention(32, 64, span=9, axis=2).compute_madds((2, 9, 17, 64))
    assert attention.compute_madds((2, 17, 17, 64)) == height + width


@pytest.mark.parametrize("factory, error, match", [
    (lambda: layers.AxialAttention2D(8, 16, strides=0), ValueError, "strides=0"),
    (lambda: layers.AxialAttention2D(8, 16, stride_mode="max"), ValueError,
     "stride_mode='max'"),
    (lambda: layers.AxialBlock(0), ValueError, "filters=0"),
    (lambda: layers.AxialBlock(5, bottleneck_expansion=0.3), ValueError,
     "bottleneck_expansion=0.3"),
    (lambda: layers.AxialBlock(8, num_heads=3), ValueError, "num_heads=3"),
    (lambda: layers.AxialBlock(8, span=6), ValueError, "span=6"),
    (lambda: layers.AxialBlock(8, drop_path_rate=1.0), ValueError, "drop_path_rate=1.0"),
    (lambda: layers.AxialBlock(8, activate_input=1), TypeError, "activate_input=1"),
    (lambda: layers.BottleneckBlock(8, strides=2, dilation_rate=2), ValueError,
     "dilation_rate=2"),
    (lambda: layers.BottleneckBlock(8, kernel_size=0), ValueError, "kernel_size=0"),
    (lambda: layers.ConvStem(filters=-1), ValueError, "filters=-1"),
    (lambda: layers.InceptionStem(filters=(64, 64)), ValueError, r"filters=\(64, 64\)"),
    (lambda: layers.InceptionStem(use_max_pool="no"), TypeError, "use_max_pool='no'"),
    (lambda: layers.FullAxialStem(num_blocks=0), ValueError, "num_blocks=0"),
    (lambda: layers.FullAxialStem(span=4), ValueError, "span=4"),
])
def test_argument_validation(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_input_validation():
    with pytest.raises(ValueError, match="use_projection_shortcut=False"):
        layers.AxialBlock(4, num_heads=2, use_projection_shortcut=False).build((1, 5, 5, 8))
    with pytest.raises(ValueError, match=r"input_shape=\(1, 5, 8\)"):
        layers.BottleneckBlock(4).build((1, 5, 8))
    with pytest.raises(ValueError, match="AxialAttention2D expects"):
        layers.AxialAttention2D(8, 16).build((1, 5, 8))


def test_axial_block_converts_to_tflite_builtins(monkeypatch):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from keras_axial.layers import axial_attention

    # Small chunks, so that the chunked inference loop (a WHILE op) is in the graph.
    monkeypatch.setattr(axial_attention, "_CHUNK_ELEMENTS", 64)
    block = layers.AxialBlock(4, num_heads=2, span=5, strides=2)
    inputs = keras.Input((13, 11, 8))  # unknown batch size, as exported models have
    model = keras.Model(inputs, block(inputs))
    randomize_layer(block, 5)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], (3, 13, 11, 8))
    interpreter.allocate_tensors()
    assert "WHILE" in {op["op_name"] for op in interpreter._get_ops_details()}
    x = random_inputs((3, 13, 11, 8))
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    outputs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(outputs, model(x), atol=1e-4)

"""Parameter and M-Adds counting checked against hand-computed counts."""

import keras
import pytest

from keras_axial.utils import count_madds, count_params, madds_breakdown


def _small_model():
    images = keras.Input((None, None, 3), name="images")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv")(images)
    x = keras.layers.BatchNormalization(name="bn")(x)
    separable = keras.layers.SeparableConv2D(16, 5, padding="same", name="separable")(x)
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    x = keras.layers.Concatenate(name="concat")([separable, depthwise])
    head = keras.Sequential(
        [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, name="fc")], name="head"
    )
    return keras.Model(images, head(x))


def test_counts_match_hand_computation():
    model = _small_model()
    positions = 2 * 17 * 17  # batch 2, 33x33 input at stride 2 with 'same' padding
    expected = {
        "conv": positions * 3 * 3 * 3 * 8,
        "bn": 0,
        "separable": positions * (5 * 5 * 8 + 8 * 16),
        "dw": positions * 3 * 3 * 8 * 2,
        "concat": 0,
        "head": 2 * 32 * 10,
    }
    assert madds_breakdown(model, (2, 33, 33, 3)) == expected
    assert count_madds(model, (2, 33, 33, 3)) == sum(expected.values())
    # conv kernel+bias, bn gamma+beta (moving statistics are not parameters), separable, dw, fc
    trainable = (27 * 8 + 8) + 2 * 8 + (25 * 8 + 8 * 16 + 16) + (9 * 16 + 16) + (32 * 10 + 10)
    assert count_params(model) == trainable
    assert count_params(model, trainable_only=False) == trainable + 2 * 8


def test_nested_model_and_einsum_dense():
    inputs = keras.Input((7, 12))
    x = keras.layers.EinsumDense("btc,cd->btd", output_shape=(7, 5))(inputs)
    inner = keras.Model(inputs, x)
    outer_inputs = keras.Input((7, 12))
    outer = keras.Model(outer_inputs, keras.layers.Dense(3)(inner(outer_inputs)))
    assert count_madds(outer, (4, 7, 12)) == 4 * 7 * 12 * 5 + 4 * 7 * 5 * 3


def test_errors_name_the_problem():
    class Opaque(keras.layers.Layer):
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 2))

        def call(self, x):
            return keras.ops.matmul(x, self.kernel)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Opaque(name="opaque")(inputs))
    with pytest.raises(TypeError, match="opaque"):
        count_madds(model, (1, 4))
    with pytest.raises(ValueError, match="input_shape"):
        count_madds(model, (None, 4))
    with pytest.raises(ValueError, match="not built"):
        count_params(keras.layers.Dense(3))

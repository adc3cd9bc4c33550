"""AxialAttention against the float64 numpy oracle: global/local span, masking, switches,
fixed-size tables, symbolic lengths, XLA, batch statistics, validation, M-Adds."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_axial.layers import AxialAttention
from keras_axial.layers import single_pass_attention
from tests.layers.helpers import random_inputs
from tests.layers.numpy_axial import axial_attention_1d, axial_weights_from_layer, randomize_layer

TERMS = ("content", "query_rpe", "key_rpe")
RETRIEVE = ("content", "value_rpe")


def make_layer(channels=6, seed=1, **kwargs):
    kwargs.setdefault("num_heads", 2)
    layer = AxialAttention(kwargs.pop("key_depth", 8), kwargs.pop("value_depth", 12), **kwargs)
    layer.build((None, None, channels))
    randomize_layer(layer, seed)
    return layer


def reference(layer, x, **kwargs):
    terms = [t for t, on in zip(TERMS, (layer.use_content_similarity, layer.use_query_rpe,
                                        layer.use_key_rpe)) if on]
    retrieve = [t for t, on in zip(RETRIEVE, (layer.retrieve_value_content,
                                              layer.retrieve_value_rpe)) if on]
    return axial_attention_1d(x, axial_weights_from_layer(layer), layer.num_heads,
                              span=layer.span, max_span=layer.table_max_span, terms=terms,
                              retrieve=retrieve, epsilon=layer.batch_norm_epsilon, **kwargs)


@pytest.mark.parametrize("length, span, block", [
    (9, None, None),   # global
    (9, 5, None),      # local, one dense masked block
    (23, 5, 4),        # blocked, length not a multiple of the block
    (30, 7, 2),        # blocks smaller than the half span
    (17, 33, None),    # span covers everything: global
    (23, 9, None),     # blocked, block size chosen for the length (6, not the default 8)
])
def test_matches_reference(length, span, block):
    layer = make_layer(span=span, query_block_size=block)
    x = random_inputs((3, length, 6))
    np.testing.assert_allclose(layer(x), reference(layer, x), atol=2e-5)


def test_default_block_size_pads_least():
    layer = make_layer(span=65)
    assert layer.block_size == 16
    # 16k + 1 lengths of the panoptic models: 13 blocks pad 129 to 130 queries, not 144.
    assert [layer._block_size(n) for n in (129, 257, 160)] == [13, 13, 16]
    assert make_layer(span=65, query_block_size=16)._block_size(129) == 16
    assert make_layer(span=9)._block_size(23) == 6


@pytest.mark.parametrize("switches", [
    dict(use_query_rpe=False, use_key_rpe=False, retrieve_value_rpe=False),  # plain attention
    dict(use_key_rpe=False, retrieve_value_rpe=False),                       # SASA-style
    dict(use_content_similarity=False, retrieve_value_content=False),
    dict(use_query_rpe=False),
])
def test_term_switches(switches):
    layer = make_layer(span=5, query_block_size=3, **switches)
    x = random_inputs((2, 14, 6))
    np.testing.assert_allclose(layer(x), reference(layer, x), atol=2e-5)
    missing = {"use_query_rpe": "query_rpe", "use_key_rpe": "key_rpe",
               "retrieve_value_rpe": "value_rpe"}
    for flag, table in missing.items():
        assert (getattr(layer, table) is None) == (not getattr(layer, flag))


def test_content_only_is_plain_multi_head_attention():
    layer = AxialAttention(8, 12, num_heads=2, use_query_rpe=False, use_key_rpe=False,
                           retrieve_value_rpe=False, batch_norm_epsilon=1e-12)
    x = random_inputs((2, 10, 6))
    outputs = np.asarray(layer(x))  # fresh batch norms are the identity
    kernel = np.asarray(layer.qkv_kernel, np.float64)
    q, k, v = np.split(np.asarray(x, np.float64) @ kernel, [8, 16], axis=-1)
    expected = []
    for head in range(2):
        qh, kh, vh = q[..., 4 * head:4 * head + 4], k[..., 4 * head:4 * head + 4], \
            v[..., 6 * head:6 * head + 6]
        logits = qh @ np.swapaxes(kh, 1, 2)  # no 1/sqrt(d)
        weights = np.exp(logits - logits.max(-1, keepdims=True))
        expected.append(weights / weights.sum(-1, keepdims=True) @ vh)
    np.testing.assert_allclose(outputs, np.concatenate(expected, -1), atol=1e-5)


def test_covering_local_span_equals_global():
    length = 12
    local = make_layer(span=2 * length - 1, max_span=255)
    global_ = make_layer(span=None)
    x = random_inputs((2, length, 6))
    np.testing.assert_allclose(local(x), global_(x), atol=1e-5)
    # One position shorter reach: the corner query no longer sees the far corner key.
    narrow = make_layer(span=2 * length - 3, max_span=255)
    assert np.abs(np.asarray(narrow(x)) - np.asarray(global_(x))).max() > 1e-3


def test_tables_have_a_fixed_size_and_run_at_any_length():
    layer = make_layer(span=None, max_span=6)
    assert tuple(layer.query_rpe.shape) == (11, 4)
    assert tuple(layer.value_rpe.shape) == (11, 6)
    for length in (3, 9, 40):  # 40 > max_span: far offsets share the end rows
        x = random_inputs((2, length, 6), seed=length)
        np.testing.assert_allclose(layer(x), reference(layer, x), atol=2e-5)
    local = make_layer(span=9)
    assert tuple(local.key_rpe.shape) == (17, 4)  # max_span defaults to the span
    x = random_inputs((1, 300, 6))
    np.testing.assert_allclose(local(x), reference(local, x), atol=2e-5)


def test_keys_outside_the_span_or_image_get_zero_weight():
    layer = make_layer(span=5, query_block_size=3)
    x = random_inputs((2, 16, 6))
    outputs = np.asarray(layer(x))
    # Query 7 reaches keys 5..9: changing every other position leaves it exactly unchanged.
    changed = x.copy()
    changed[:, :5] += 3.0
    changed[:, 10:] -= 3.0
    np.testing.assert_allclose(np.asarray(layer(changed))[:, 7], outputs[:, 7], atol=1e-6)
    assert np.abs(np.asarray(layer(changed))[:, 2] - outputs[:, 2]).max() > 1e-2
    compiled = tf.function(lambda t: layer(t, training=False), jit_compile=True)
    np.testing.assert_allclose(np.asarray(compiled(changed))[:, 7],
                               np.asarray(compiled(x))[:, 7], atol=1e-6)  # XLA too
    # At the border the missing keys are left out, not read as zero vectors.
    zero_padded = reference(layer, x, zero_padded_keys=True)
    np.testing.assert_allclose(outputs, reference(layer, x), atol=2e-5)
    assert np.abs(outputs[:, 0] - zero_padded[:, 0]).max() > 1e-2
    _, weights = reference(layer, x, return_weights=True)
    assert np.all(weights[:, :, 0, 3:] == 0.0)


@pytest.mark.parametrize("span", [None, 5])
def test_symbolic_length_and_xla(span):
    layer = make_layer(span=span, query_block_size=4)
    inputs = keras.Input((None, 6))
    model = keras.Model(inputs, layer(inputs))
    compiled = tf.function(lambda t: model(t, training=False), jit_compile=True)
    for length in (5, 18):
        x = random_inputs((3, length, 6), seed=length)
        expected = reference(layer, x)
        np.testing.assert_allclose(model(x, training=False), expected, atol=2e-5)
        np.testing.assert_allclose(compiled(x), expected, atol=2e-5)


def test_chunked_inference_over_many_sequences():
    layer = make_layer(span=None, num_heads=2)
    x = random_inputs((700, 24, 6))  # more sequences than one chunk holds; not a multiple
    np.testing.assert_allclose(layer(x), reference(layer, x), atol=2e-5)
    with single_pass_attention():
        np.testing.assert_allclose(layer(x), reference(layer, x), atol=2e-5)
        traced = tf.function(lambda t: layer(t)).get_concrete_function(
            tf.TensorSpec((None, 24, 6)))
    assert not {op.type for op in traced.graph.get_operations()} & {"While", "StatelessWhile"}
    chunked = tf.function(lambda t: layer(t)).get_concrete_function(tf.TensorSpec((None, 24, 6)))
    assert {op.type for op in chunked.graph.get_operations()} & {"While", "StatelessWhile"}


@pytest.mark.parametrize("span, block", [(None, None), (5, 3)])
def test_training_uses_batch_statistics_over_valid_pairs(span, block):
    layer = make_layer(span=span, query_block_size=block, batch_norm_momentum=0.9)
    x = random_inputs((4, 11, 6))
    expected = reference(layer, x, training=True)
    before = np.asarray(layer.content_similarity_batch_norm.moving_mean)
    np.testing.assert_allclose(layer(x, training=True), expected, atol=5e-5)
    after = np.asarray(layer.content_similarity_batch_norm.moving_mean)
    assert np.abs(after - before).max() > 1e-4
    # Frozen batch norms use their moving statistics even in training.
    layer.trainable = False
    np.testing.assert_allclose(layer(x, training=True), reference(layer, x), atol=2e-5)


@pytest.mark.parametrize("span, block", [(None, None), (5, 3)])
def test_learning_projection_norm_uses_the_whole_batch_with_frozen_attention_norms(span, block):
    # Inference attention runs over chunks of sequences; a projection batch norm that still
    # learns must take its statistics over the whole batch, not per chunk.
    layer = make_layer(span=span, query_block_size=block)
    for batch_norm in (list(layer.similarity_batch_norms.values())
                       + list(layer.output_batch_norms.values())):
        batch_norm.trainable = False
    x = random_inputs((700, 11, 6))  # several chunks
    projected = x.reshape(-1, 6) @ np.asarray(layer.qkv_kernel)
    frozen = make_layer(span=span, query_block_size=block)
    frozen.qkv_batch_norm.moving_mean.assign(projected.mean(axis=0))
    frozen.qkv_batch_norm.moving_variance.assign(projected.var(axis=0))
    np.testing.assert_allclose(layer(x, training=True), reference(frozen, x), atol=5e-5)


def test_gradients_reach_every_weight():
    layer = make_layer(span=5, query_block_size=3)
    x = tf.constant(random_inputs((2, 9, 6)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x, training=True)))
    gradients = tape.gradient(loss, layer.trainable_weights)
    for variable, gradient in zip(layer.trainable_weights, gradients):
        assert gradient is not None, variable.path
        assert np.abs(np.asarray(tf.convert_to_tensor(gradient))).max() > 0, variable.path


def test_compute_madds_follows_the_paper_formula():
    layer = AxialAttention(64, 128, num_heads=8, axis=2)
    positions = 2 * 32 * 48
    assert layer.compute_madds((2, 32, 48, 128)) == positions * (128 * 256 + 48 * 448)
    local = AxialAttention(64, 128, span=9, axis=1, use_key_rpe=False)
    assert local.compute_madds((2, 32, 48, 128)) == positions * (128 * 256 + 9 * 384)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(total_key_depth=10, num_heads=4), ValueError, "total_key_depth=10, num_heads=4"),
    (dict(total_value_depth=0), ValueError, "total_value_depth=0"),
    (dict(span=4), ValueError, "span=4"),
    (dict(span=2.5), TypeError, "span=2.5"),
    (dict(span=65, max_span=20), ValueError, "max_span=20"),
    (dict(axis=0), ValueError, "axis=0"),
    (dict(axis=-1), ValueError, "axis=-1"),
    (dict(use_query_rpe="yes"), TypeError, "use_query_rpe='yes'"),
    (dict(use_query_rpe=False, use_key_rpe=False, use_content_similarity=False), ValueError,
     "use_content_similarity=False"),
    (dict(retrieve_value_rpe=False, retrieve_value_content=False), ValueError,
     "retrieve_value_content=False"),
    (dict(batch_norm_momentum=1.0), ValueError, "batch_norm_momentum=1.0"),
    (dict(batch_norm_epsilon=0.0), ValueError, "batch_norm_epsilon=0.0"),
    (dict(query_block_size=0), ValueError, "query_block_size=0"),
])
def test_argument_validation(kwargs, error, match):
    arguments = dict(total_key_depth=8, total_value_depth=16, num_heads=2)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        AxialAttention(**arguments)


def test_input_validation():
    with pytest.raises(ValueError, match="rank >= 3"):
        AxialAttention(8, 16, num_heads=2).build((4, 8))
    with pytest.raises(ValueError, match="axis`=3"):
        AxialAttention(8, 16, num_heads=2, axis=3).build((2, 5, 5, 8))

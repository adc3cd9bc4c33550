"""Checks every keras-axial layer must pass, as one call (`check_layer_contract`)."""

import keras
import numpy as np
import tensorflow as tf

from tests.layers.numpy_axial import randomize_layer


def random_inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def check_layer_contract(factory, input_shape, tmp_path, *, train_step=True, seed=0):
    """Builds `factory()` on `input_shape` and checks the layer contract end to end.

    Output shape == `compute_output_shape`; `get_config` round trip; `.keras` save/load gives
    equal outputs; the same outputs under `jit_compile=True`; (optionally) an XLA training
    step; under `mixed_bfloat16` the layer computes in bfloat16 and stays close to float32;
    `compute_madds` is a non-negative int.
    """
    x = random_inputs(input_shape, seed)
    layer = factory()
    layer(x)
    randomize_layer(layer, seed + 1)
    expected = np.asarray(layer(x, training=False))
    assert expected.shape == tuple(layer.compute_output_shape(x.shape))
    assert np.all(np.isfinite(expected))

    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config

    inputs = keras.Input(input_shape[1:])
    model = keras.Model(inputs, layer(inputs))
    assert tuple(model.output.shape) == tuple(layer.compute_output_shape((None,) + input_shape[1:]))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), expected, atol=1e-5)

    model.compile(jit_compile=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)
    madds = layer.compute_madds(input_shape)
    assert isinstance(madds, int) and madds >= 0

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        # Without the saved float32 policy, the layer takes the global mixed policy.
        mixed = type(layer).from_config({k: v for k, v in config.items() if k != "dtype"})
        mixed(x)
        mixed.set_weights(layer.get_weights())
        outputs = mixed(x, training=False)
        assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
        outputs = np.asarray(tf.cast(outputs, tf.float32))
        scale = np.abs(expected).max() + 1e-6
        assert np.abs(outputs - expected).max() <= 0.1 * scale
        assert np.all(np.isfinite(np.asarray(tf.cast(mixed(x, training=True), tf.float32))))
    finally:
        keras.config.set_dtype_policy(previous)

    if train_step:  # last: it changes the weights
        model.compile(optimizer="sgd", loss="mse", jit_compile=True)
        loss = model.train_on_batch(x, np.zeros_like(expected))
        assert np.isfinite(loss)
    return layer

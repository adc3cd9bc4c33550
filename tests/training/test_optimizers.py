import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_axial.training.checkpoints import CheckpointManager
from keras_axial.training.optimizers import Lookahead, RAdam, build_optimizer

GRADIENTS = [
    np.array([0.5, -1.0, 0.0], np.float32),
    np.array([0.2, 0.3, -2.0], np.float32),
    np.array([1.0, 1.0, 1.0], np.float32),
    np.array([-0.4, 0.1, 0.7], np.float32),
    np.array([0.3, -0.6, 0.2], np.float32),
    np.array([0.9, 0.2, -0.1], np.float32),
    np.array([0.1, -0.3, 0.5], np.float32),
]
START = np.array([1.0, -2.0, 0.5], np.float32)


def reference_radam(gradients, start, lr, beta_1=0.9, beta_2=0.999, eps=1e-7, threshold=5.0):
    """Algorithm 2 of Liu et al. (2020), written out step by step."""
    theta, m, v = start.astype(np.float64), 0.0, 0.0
    rho_inf = 2 / (1 - beta_2) - 1
    for t, g in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        m_hat = m / (1 - beta_1**t)
        rho = rho_inf - 2 * t * beta_2**t / (1 - beta_2**t)
        if rho > threshold:
            v_hat = np.sqrt(v / (1 - beta_2**t)) + eps
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            theta = theta - lr * r * m_hat / v_hat
        else:
            theta = theta - lr * m_hat
    return theta


def reference_lookahead_sgd(gradients, start, lr, k, alpha):
    """Algorithm 1 of Zhang et al. (2019) with plain SGD as the inner optimizer."""
    fast = start.astype(np.float64)
    slow = fast.copy()
    for t, g in enumerate(gradients, start=1):
        fast = fast - lr * g
        if t % k == 0:
            slow = slow + alpha * (fast - slow)
            fast = slow.copy()
    return fast, slow


def run_optimizer(optimizer, gradients, start=START):
    variable = keras.Variable(start)
    for gradient in gradients:
        optimizer.apply([tf.constant(gradient)], [variable])
    return variable.numpy()


def test_radam_matches_the_paper_algorithm_in_both_phases():
    # beta_2 = 0.9 makes rho_t cross the threshold at step 6, so both branches are exercised.
    optimizer = RAdam(learning_rate=0.1, beta_2=0.9)
    result = run_optimizer(optimizer, GRADIENTS)
    expected = reference_radam(GRADIENTS, START, 0.1, beta_2=0.9)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
    assert int(optimizer.iterations.numpy()) == len(GRADIENTS)


def test_radam_early_steps_are_momentum_sgd_with_default_betas():
    result = run_optimizer(RAdam(learning_rate=0.01), GRADIENTS[:3])
    np.testing.assert_allclose(result, reference_radam(GRADIENTS[:3], START, 0.01), rtol=1e-6)


def test_lookahead_matches_the_paper_algorithm():
    optimizer = Lookahead(keras.optimizers.SGD(0.1), sync_period=3, slow_step_size=0.5)
    variable = keras.Variable(START)
    for gradient in GRADIENTS:
        optimizer.apply([tf.constant(gradient)], [variable])
    fast, slow = reference_lookahead_sgd(GRADIENTS, START, 0.1, k=3, alpha=0.5)
    np.testing.assert_allclose(variable.numpy(), fast, rtol=1e-6)
    np.testing.assert_allclose(optimizer._slow_weights[0].numpy(), slow, rtol=1e-6)
    assert int(optimizer.iterations.numpy()) == len(GRADIENTS)


def test_lookahead_slow_weights_start_from_weights_loaded_after_build():
    variable = keras.Variable(np.zeros(3, np.float32))
    optimizer = Lookahead(keras.optimizers.SGD(0.1), sync_period=2, slow_step_size=0.5)
    optimizer.build([variable])
    variable.assign(START)  # e.g. pretrained weights restored after the optimizer was built
    for gradient in GRADIENTS[:2]:
        optimizer.apply([tf.constant(gradient)], [variable])
    fast, _ = reference_lookahead_sgd(GRADIENTS[:2], START, 0.1, k=2, alpha=0.5)
    np.testing.assert_allclose(variable.numpy(), fast, rtol=1e-6)


def test_lookahead_radam_round_trips_config_and_checkpoint(tmp_path):
    def make():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(build_optimizer("radam", 1e-2, lookahead=True, lookahead_sync_period=2), "mse")
        return model

    x = np.random.RandomState(0).rand(16, 3).astype("float32")
    model = make()
    model.fit(x, x[:, :2], epochs=3, verbose=0)
    config = keras.optimizers.serialize(model.optimizer)
    clone = keras.optimizers.deserialize(config)
    assert isinstance(clone, Lookahead) and isinstance(clone.inner_optimizer, RAdam)
    assert keras.optimizers.serialize(clone) == config

    CheckpointManager(tmp_path, model).save(3)
    restored = make()
    CheckpointManager(tmp_path, restored).restore()
    names = [v.path for v in model.optimizer.variables]
    assert any("slow" in n for n in names) and any("velocity" in n for n in names)
    for saved, loaded in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy(), err_msg=saved.path)
    # Training goes on identically from the restored state.
    model.fit(x, x[:, :2], epochs=2, verbose=0, shuffle=False)
    restored.fit(x, x[:, :2], epochs=2, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("adam", {}, keras.optimizers.Adam),
        ("adamw", {"weight_decay": 1e-4}, keras.optimizers.AdamW),
        ("sgd", {}, keras.optimizers.SGD),
        ("radam", {"lookahead": True}, Lookahead),
    ],
)
def test_build_optimizer(name, kwargs, expected):
    optimizer = build_optimizer(name, 1e-3, global_clipnorm=1.0, **kwargs)
    assert isinstance(optimizer, expected)
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    assert inner.global_clipnorm == 1.0
    if name == "sgd":
        assert inner.nesterov and inner.momentum == 0.9


def test_decoupled_weight_decay_and_clipping_take_effect():
    sgd = build_optimizer("sgd", 0.1, momentum=0.0, nesterov=False, weight_decay=0.5)
    result = run_optimizer(sgd, [np.zeros(3, np.float32)])
    np.testing.assert_allclose(result, START * (1 - 0.1 * 0.5), rtol=1e-6)
    clipped = build_optimizer("sgd", 1.0, momentum=0.0, nesterov=False, global_clipnorm=1.0)
    result = run_optimizer(clipped, [np.array([3.0, 4.0, 0.0], np.float32)])
    np.testing.assert_allclose(result, START - np.array([0.6, 0.8, 0.0]), rtol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: build_optimizer("adagrad"), "Unknown optimizer"),
        (lambda: build_optimizer("adamw", weight_decay=0.0), "weight_decay > 0"),
        (lambda: build_optimizer("adam", clipnorm=1.0, global_clipnorm=1.0), "at most one"),
        (lambda: RAdam(beta_2=1.0), "beta_2"),
        (lambda: RAdam(rectification_threshold=3.0), "rectification_threshold"),
        (lambda: Lookahead(keras.optimizers.SGD(), sync_period=0), "sync_period"),
        (lambda: Lookahead(keras.optimizers.SGD(), slow_step_size=1.5), "slow_step_size"),
        (lambda: Lookahead("sgd"), "keras Optimizer"),
    ],
)
def test_invalid_arguments_are_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()

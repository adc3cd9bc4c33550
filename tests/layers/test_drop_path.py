"""DropPath: identity at inference, whole examples dropped and rescaled in training."""

import numpy as np
import pytest

from keras_axial.layers import DropPath


def test_identity_at_inference_and_without_rate():
    x = np.random.default_rng(0).normal(size=(8, 3, 3, 4)).astype("float32")
    np.testing.assert_array_equal(DropPath(0.5)(x), x)
    np.testing.assert_array_equal(DropPath(0.0)(x, training=True), x)


def test_drops_whole_examples_and_keeps_the_expectation():
    x = np.ones((4000, 2, 2, 3), "float32")
    y = np.asarray(DropPath(0.25, seed=3)(x, training=True))
    per_example = y.reshape(4000, -1)
    kept = per_example[:, 0] > 0
    np.testing.assert_allclose(per_example[kept], 1.0 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(per_example[~kept], 0.0)
    assert abs(kept.mean() - 0.75) < 0.03
    assert abs(y.mean() - 1.0) < 0.05


@pytest.mark.parametrize("rate, error", [(1.0, ValueError), (-0.1, ValueError),
                                         ("0.1", TypeError)])
def test_argument_validation(rate, error):
    with pytest.raises(error, match="rate="):
        DropPath(rate)

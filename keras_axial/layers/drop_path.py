"""Stochastic depth on a residual branch."""

import keras
from keras import ops

from keras_axial.layers import _common


@keras.saving.register_keras_serializable(package="keras_axial")
class DropPath(keras.layers.Layer):
    """Drops a whole residual branch per example (stochastic depth).

    In training each example's branch is zeroed with probability `rate` and otherwise scaled by
    `1 / (1 - rate)`, so the expected output equals the input; at inference it is the identity.
    (deeplab2's `drop_path_keep_prob` is `1 - rate`.)

    Args:
        rate: float in [0, 1), probability of dropping an example's branch. Defaults to `0.0`.
        seed: None or int, seed of the random masks. Defaults to `None`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: tensor `[batch, ...]`, the residual branch.
        training: bool; only in training is anything dropped.

    Returns:
        A tensor shaped like `inputs`.

    Example:

    >>> layer = DropPath(0.2)
    >>> y = layer(np.ones((8, 4, 4, 16), "float32"), training=True)

    Reference:
        Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _common.check_float("rate", rate, 0.0, 1.0, max_inclusive=False)
        self.seed = _common.check_int("seed", seed, allow_none=True)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(shape, seed=self.seed_generator, dtype="float32")
        mask = ops.cast(ops.floor(keep + noise) / keep, inputs.dtype)
        return inputs * mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_madds(self, input_shape):
        return 0

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config

"""RAdam, Lookahead and the optimizer builder the gin experiments use.

Keras 3 ships Adam, AdamW and SGD but neither RAdam nor Lookahead, the paper's panoptic choice
("linear warm-up RAdam + Lookahead, learning rate 0.001"). Both are written here as Keras
optimizers: their state lives in optimizer variables (saved with `model.save_weights` and our
checkpoints), they serialize with `get_config`, and their updates go through Keras' TensorFlow
optimizer machinery, so they work under every `tf.distribute` strategy.
"""

import keras
import tensorflow as tf
from keras import ops

OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "radam")


@keras.saving.register_keras_serializable(package="keras_axial")
class RAdam(keras.optimizers.Optimizer):
    """Rectified Adam: Adam whose adaptive step is switched on only once its variance is tractable.

    With `rho_inf = 2 / (1 - beta_2) - 1` and `rho_t = rho_inf - 2 t beta_2^t / (1 - beta_2^t)`
    (the length of the approximated simple moving average at step `t`), the update is

    - `rho_t > rectification_threshold`: `var -= lr * r_t * m_hat / (sqrt(v_hat) + epsilon)` with
      `r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))`;
    - otherwise: `var -= lr * m_hat` (momentum SGD on the bias-corrected first moment),

    where `m_hat = m_t / (1 - beta_1^t)` and `v_hat = v_t / (1 - beta_2^t)`.

    Args:
        learning_rate: float or `LearningRateSchedule` (default 1e-3, the paper's value).
        beta_1: decay of the first moment (default 0.9).
        beta_2: decay of the second moment (default 0.999).
        epsilon: added to `sqrt(v_hat)` (default 1e-7, Keras' Adam default).
        rectification_threshold: the adaptive step is used when `rho_t` exceeds it (default 5.0).
            The paper's Algorithm 2 states `rho_t > 4`, where the variance of the adaptive rate
            becomes finite; the authors' released code (and PyTorch) use 5, because just above
            4 the rectification term is tiny and the step is still noisy.
        **kwargs: the base optimizer arguments (`weight_decay`, `clipnorm`, `global_clipnorm`,
            `clipvalue`, `use_ema`, `loss_scale_factor`, `gradient_accumulation_steps`, `name`).

    Example:
        >>> optimizer = RAdam(learning_rate=1e-3)
        >>> model.compile(optimizer=Lookahead(optimizer), loss=...)

    Reference:
        Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020.
    """

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        rectification_threshold=5.0,
        name="radam",
        **kwargs,
    ):
        for argument, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{argument} must be in [0, 1). Received: {argument}={value!r}")
        if epsilon < 0:
            raise ValueError(f"epsilon must be >= 0. Received: epsilon={epsilon!r}")
        if rectification_threshold < 4.0:
            raise ValueError(
                "rectification_threshold must be >= 4 (the rectification term is undefined "
                f"below). Received: rectification_threshold={rectification_threshold!r}"
            )
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.rectification_threshold = rectification_threshold

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def apply(self, grads, trainable_variables=None):
        # The step's scalars (bias corrections, rectification) are computed once here, not once
        # per variable in `update_step`: a few ops instead of a few thousand in the traced graph.
        self._step_coefficients = self._coefficients()
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._step_coefficients = None

    def _coefficients(self):
        step = ops.cast(self.iterations + 1, "float32")
        beta_1_power = ops.power(ops.cast(self.beta_1, "float32"), step)
        beta_2_power = ops.power(ops.cast(self.beta_2, "float32"), step)
        rho_inf = 2.0 / (1.0 - self.beta_2) - 1.0
        rho = rho_inf - 2.0 * step * beta_2_power / (1.0 - beta_2_power)
        # Clamp inside the square root: the branch not taken must stay finite.
        safe_rho = ops.maximum(rho, self.rectification_threshold)
        rectification = ops.sqrt(
            (safe_rho - 4.0) * (safe_rho - 2.0) * rho_inf
            / ((rho_inf - 4.0) * (rho_inf - 2.0) * safe_rho)
        )
        return {
            "first_correction": 1.0 - beta_1_power,
            "second_correction": 1.0 - beta_2_power,
            "rectification": rectification,
            "rectified": rho > self.rectification_threshold,
        }

    def update_step(self, gradient, variable, learning_rate):
        coefficients = getattr(self, "_step_coefficients", None) or self._coefficients()
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        momentum = self._momentums[self._get_variable_index(variable)]
        velocity = self._velocities[self._get_variable_index(variable)]
        self.assign_add(momentum, ops.multiply(ops.subtract(gradient, momentum), 1 - self.beta_1))
        self.assign_add(
            velocity,
            ops.multiply(ops.subtract(ops.square(gradient), velocity), 1 - self.beta_2),
        )
        momentum_hat = ops.divide(momentum, ops.cast(coefficients["first_correction"], dtype))
        velocity_hat = ops.divide(velocity, ops.cast(coefficients["second_correction"], dtype))
        adaptive = ops.divide(
            ops.multiply(momentum_hat, ops.cast(coefficients["rectification"], dtype)),
            ops.add(ops.sqrt(velocity_hat), self.epsilon),
        )
        update = ops.where(coefficients["rectified"], adaptive, momentum_hat)
        self.assign_sub(variable, ops.multiply(update, ops.cast(learning_rate, dtype)))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "rectification_threshold": self.rectification_threshold,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_axial")
class Lookahead(keras.optimizers.Optimizer):
    """Wraps an optimizer with Lookahead's slow weights.

    The inner optimizer updates the ("fast") weights every step. Every `sync_period` steps the
    slow weights move towards them, `slow += slow_step_size * (fast - slow)`, and the fast
    weights are reset to the slow ones. The slow weights start as the weights at the first
    step (so weights loaded after the optimizer was built are honoured), are optimizer
    variables (saved and restored with the checkpoints) and are updated per replica under
    `tf.distribute`, like any optimizer slot.

    Args:
        optimizer: the inner `keras.optimizers.Optimizer` (e.g. `RAdam`). Learning rate,
            weight decay and clipping are the inner optimizer's.
        sync_period: `k`, steps between synchronisations (default 6, as in deeplab2's
            Panoptic-DeepLab recipe and the tensorflow-addons default).
        slow_step_size: `alpha` (default 0.5).
        name: optimizer name (default `"lookahead"`).

    Example:
        >>> optimizer = Lookahead(RAdam(learning_rate=1e-3), sync_period=6, slow_step_size=0.5)

    Reference:
        Zhang et al., "Lookahead Optimizer: k steps forward, 1 step back", NeurIPS 2019.
    """

    def __init__(self, optimizer, sync_period=6, slow_step_size=0.5, name="lookahead", **kwargs):
        if isinstance(optimizer, dict):
            optimizer = keras.optimizers.deserialize(optimizer)
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(
                f"optimizer must be a keras Optimizer. Received: optimizer={optimizer!r}"
            )
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            raise TypeError(
                "Wrap Lookahead in LossScaleOptimizer, not the other way round. Received: "
                f"optimizer={optimizer!r}"
            )
        if not isinstance(sync_period, int) or isinstance(sync_period, bool) or sync_period < 1:
            raise ValueError(
                f"sync_period must be a positive integer. Received: sync_period={sync_period!r}"
            )
        if not 0.0 < slow_step_size <= 1.0:
            raise ValueError(
                f"slow_step_size must be in (0, 1]. Received: slow_step_size={slow_step_size!r}"
            )
        if kwargs:
            raise ValueError(
                "Lookahead takes learning rate, weight decay and clipping from its inner "
                f"optimizer. Received extra arguments: {sorted(kwargs)}"
            )
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = optimizer
        self.sync_period = sync_period
        self.slow_step_size = slow_step_size

    def build(self, var_list):
        if self.built:
            return
        self.inner_optimizer.build(var_list)
        self._slow_weights = self.add_optimizer_variables(var_list, "slow")
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            self.build(trainable_variables)
        # A read of the counter before the inner step increments it.
        step = tf.convert_to_tensor(getattr(self.inner_optimizer.iterations, "value", self.inner_optimizer.iterations))
        slow_weights = [self._slow_weights[self._get_variable_index(v)] for v in trainable_variables]
        # Deferred first-step initialisation: the weights may have been loaded after `build`.
        self._for_each_variable(
            trainable_variables,
            slow_weights,
            lambda fast, slow: slow.assign(tf.where(tf.equal(step, 0), fast, slow)),
        )
        self.inner_optimizer.apply(grads, trainable_variables)
        synchronise = tf.equal((step + 1) % self.sync_period, 0)
        alpha = self.slow_step_size

        def sync(fast, slow):
            new_slow = slow + alpha * (fast - slow)
            new_slow = tf.where(synchronise, new_slow, slow)
            slow.assign(new_slow)
            fast.assign(tf.where(synchronise, new_slow, fast))

        self._for_each_variable(trainable_variables, slow_weights, sync)

    def _for_each_variable(self, fast_variables, slow_variables, function):
        """Runs `function(fast, slow)` on every device copy, as Keras' TF optimizer updates do."""
        fast_variables = [getattr(v, "value", v) for v in fast_variables]
        slow_variables = [getattr(v, "value", v) for v in slow_variables]

        def update(distribution, pairs):
            for fast, slow in pairs:
                distribution.extended.update(
                    fast, lambda f, s: function(f, s), args=(slow,), group=False
                )

        tf.__internal__.distribute.interim.maybe_merge_call(
            update, tf.distribute.get_strategy(), list(zip(fast_variables, slow_variables))
        )

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.optimizers.serialize(self.inner_optimizer),
            "sync_period": self.sync_period,
            "slow_step_size": self.slow_step_size,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = keras.optimizers.deserialize(
            config["optimizer"], custom_objects=custom_objects
        )
        return cls(**config)


def build_optimizer(
    name="adam",
    learning_rate=1e-3,
    *,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-7,
    momentum=0.9,
    nesterov=True,
    weight_decay=0.0,
    exclude_from_weight_decay=(),
    lookahead=False,
    lookahead_sync_period=6,
    lookahead_slow_step_size=0.5,
    clipnorm=None,
    global_clipnorm=None,
):
    """Builds an experiment's optimizer by name.

    Args:
        name: `"adam"` (default; deeplab2's axial configs), `"adamw"`, `"sgd"` (with
            `momentum` / `nesterov`; the ImageNet recipe) or `"radam"` (the paper's panoptic
            choice, with `lookahead=True`).
        learning_rate: float or `LearningRateSchedule` (default 1e-3).
        beta_1: Adam / AdamW / RAdam first-moment decay (default 0.9).
        beta_2: Adam / AdamW / RAdam second-moment decay (default 0.999).
        epsilon: Adam / AdamW / RAdam epsilon (default 1e-7).
        momentum: SGD momentum (default 0.9).
        nesterov: SGD Nesterov momentum (default `True`).
        weight_decay: decoupled weight decay, `var -= lr * weight_decay * var` each step
            (default 0.0, none; the panoptic recipes use none). Note that PyTorch-style SGD
            weight decay adds `wd * var` to the gradient, which momentum amplifies by
            `1 / (1 - momentum)`: the decoupled equivalent of coupled `wd` is
            `wd / (1 - momentum)`.
        exclude_from_weight_decay: variable-name substrings never decayed (default `()`;
            e.g. `("bias", "gamma", "beta")`).
        lookahead: wrap the optimizer in `Lookahead` (default `False`).
        lookahead_sync_period: Lookahead `k` (default 6).
        lookahead_slow_step_size: Lookahead `alpha` (default 0.5).
        clipnorm: clip each gradient to this L2 norm (default `None`, no clipping).
        global_clipnorm: clip all gradients jointly to this global norm (default `None`).

    Returns:
        A `keras.optimizers.Optimizer`.

    Example:
        >>> schedule = build_learning_rate_schedule(1e-3, total_steps=60_000, warmup_steps=1000)
        >>> optimizer = build_optimizer("radam", schedule, lookahead=True)
    """
    if name not in OPTIMIZER_NAMES:
        raise ValueError(
            f"Unknown optimizer. Received: name={name!r}; expected one of {OPTIMIZER_NAMES}."
        )
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0. Received: weight_decay={weight_decay!r}")
    if clipnorm is not None and global_clipnorm is not None:
        raise ValueError(
            "Set at most one of clipnorm and global_clipnorm. Received: "
            f"clipnorm={clipnorm!r}, global_clipnorm={global_clipnorm!r}"
        )
    common = {
        "learning_rate": learning_rate,
        "weight_decay": weight_decay or None,
        "clipnorm": clipnorm,
        "global_clipnorm": global_clipnorm,
    }
    if name == "adam":
        optimizer = keras.optimizers.Adam(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **common)
    elif name == "adamw":
        if not weight_decay:
            raise ValueError("name='adamw' needs weight_decay > 0. Received: weight_decay=0.0")
        optimizer = keras.optimizers.AdamW(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **common)
    elif name == "sgd":
        optimizer = keras.optimizers.SGD(momentum=momentum, nesterov=nesterov, **common)
    else:
        optimizer = RAdam(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **common)
    if weight_decay and exclude_from_weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(exclude_from_weight_decay))
    if lookahead:
        optimizer = Lookahead(
            optimizer, sync_period=lookahead_sync_period, slow_step_size=lookahead_slow_step_size
        )
    return optimizer

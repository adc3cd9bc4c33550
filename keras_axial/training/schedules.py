"""Learning-rate schedules: linear warm-up around poly, cosine or constant decay."""

import keras
from keras import ops

SCHEDULE_NAMES = ("constant", "poly", "cosine")


@keras.saving.register_keras_serializable(package="keras_axial")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Scales another schedule by a linear ramp over the first `warmup_steps` steps.

    `lr(step) = schedule(step) * min(1, (step + 1) / warmup_steps)`: the first step already
    trains (at `1 / warmup_steps` of the rate) and step `warmup_steps - 1` reaches the full
    rate. The ramp multiplies the decayed rate, as Panoptic-DeepLab's warm-up poly schedule
    does, so the decay keeps counting from step 0 and ends where it would without warm-up.

    Args:
        schedule: a `LearningRateSchedule` or a float (a constant rate).
        warmup_steps: length of the ramp in optimizer steps; 0 disables it (default 0).

    Example:
        >>> poly = keras.optimizers.schedules.PolynomialDecay(1e-3, 60_000, 0.0, power=0.9)
        >>> schedule = LinearWarmup(poly, warmup_steps=2000)
        >>> float(schedule(0))  # 1e-3 / 2000, barely decayed

    Reference:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017.
    """

    def __init__(self, schedule, warmup_steps=0):
        if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
            if schedule <= 0:
                raise ValueError(
                    f"The learning rate must be positive. Received: schedule={schedule!r}"
                )
            schedule = float(schedule)
        elif not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise TypeError(
                "schedule must be a float or a keras LearningRateSchedule. "
                f"Received: schedule={schedule!r}"
            )
        if not isinstance(warmup_steps, int) or isinstance(warmup_steps, bool) or warmup_steps < 0:
            raise ValueError(
                f"warmup_steps must be an integer >= 0. Received: warmup_steps={warmup_steps!r}"
            )
        self.schedule = schedule
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if isinstance(self.schedule, float):
            rate = ops.convert_to_tensor(self.schedule, "float32")
        else:
            rate = ops.cast(self.schedule(step), "float32")
        if self.warmup_steps == 0:
            return rate
        ramp = ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        return rate * ramp

    def get_config(self):
        schedule = self.schedule
        if not isinstance(schedule, float):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["schedule"], dict):
            config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


def build_learning_rate_schedule(
    base_learning_rate,
    *,
    schedule="poly",
    total_steps=None,
    warmup_steps=0,
    power=0.9,
    end_learning_rate=0.0,
    cosine_alpha=0.0,
):
    """Builds the learning-rate schedule of an experiment.

    Args:
        base_learning_rate: peak rate, reached at the end of the warm-up. The paper's panoptic
            recipe uses 1e-3 (RAdam + Lookahead); deeplab2's axial configs 1e-4 (Adam).
        schedule: `"poly"` (default; `(1 - step / total_steps) ** power`, deeplab2 and
            Panoptic-DeepLab), `"cosine"` (SASA / ImageNet recipe) or `"constant"`.
        total_steps: steps over which `"poly"` / `"cosine"` decay to their end value (default
            `None`; required for both).
        warmup_steps: linear warm-up steps (default 0).
        power: exponent of `"poly"` (default 0.9).
        end_learning_rate: rate `"poly"` reaches at `total_steps` (default 0.0).
        cosine_alpha: floor of `"cosine"` as a fraction of `base_learning_rate` (default 0.0).

    Returns:
        A serializable `keras.optimizers.schedules.LearningRateSchedule`.

    Example:
        >>> lr = build_learning_rate_schedule(1e-3, schedule="poly", total_steps=60_000,
        ...                                   warmup_steps=1000)
    """
    if schedule not in SCHEDULE_NAMES:
        raise ValueError(
            f"Unknown schedule. Received: schedule={schedule!r}; expected one of {SCHEDULE_NAMES}."
        )
    if not isinstance(base_learning_rate, (int, float)) or base_learning_rate <= 0:
        raise ValueError(
            "base_learning_rate must be a positive number. "
            f"Received: base_learning_rate={base_learning_rate!r}"
        )
    base_learning_rate = float(base_learning_rate)
    if schedule != "constant":
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(
                f"schedule={schedule!r} needs total_steps, a positive integer. "
                f"Received: total_steps={total_steps!r}"
            )
    if schedule == "poly":
        decayed = keras.optimizers.schedules.PolynomialDecay(
            base_learning_rate,
            decay_steps=total_steps,
            end_learning_rate=float(end_learning_rate),
            power=float(power),
        )
    elif schedule == "cosine":
        decayed = keras.optimizers.schedules.CosineDecay(
            base_learning_rate, decay_steps=total_steps, alpha=float(cosine_alpha)
        )
    else:
        decayed = base_learning_rate
    return LinearWarmup(decayed, warmup_steps=warmup_steps)

import math

import keras
import pytest

from keras_axial.training.schedules import LinearWarmup, build_learning_rate_schedule


def values(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_poly_with_warmup_matches_the_formula():
    schedule = build_learning_rate_schedule(
        1e-3, schedule="poly", total_steps=100, warmup_steps=10, power=0.9
    )
    for step in (0, 4, 9, 10, 50, 99, 100, 150):
        poly = 1e-3 * (1 - min(step, 100) / 100) ** 0.9
        expected = poly * min(1.0, (step + 1) / 10)
        assert math.isclose(float(schedule(step)), expected, rel_tol=1e-5, abs_tol=1e-12), step


def test_cosine_and_constant():
    cosine = build_learning_rate_schedule(0.1, schedule="cosine", total_steps=100, cosine_alpha=0.1)
    for step in (0, 25, 50, 100):
        cos = 0.5 * (1 + math.cos(math.pi * step / 100))
        assert math.isclose(float(cosine(step)), 0.1 * ((1 - 0.1) * cos + 0.1), rel_tol=1e-5)
    constant = build_learning_rate_schedule(0.01, schedule="constant", warmup_steps=4)
    assert values(constant, [0, 1, 3, 1000]) == pytest.approx([0.0025, 0.005, 0.01, 0.01])


def test_schedules_serialize_and_drive_an_optimizer():
    schedule = build_learning_rate_schedule(1e-3, total_steps=60_000, warmup_steps=1000)
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(clone, LinearWarmup)
    assert values(clone, [0, 500, 30_000]) == pytest.approx(values(schedule, [0, 500, 30_000]))
    optimizer = keras.optimizers.Adam(schedule)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3 / 1000)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schedule": "step"}, "Unknown schedule"),
        ({"schedule": "poly"}, "total_steps"),
        ({"schedule": "constant", "warmup_steps": -1}, "warmup_steps"),
    ],
)
def test_invalid_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_learning_rate_schedule(1e-3, **kwargs)
    with pytest.raises(ValueError, match="base_learning_rate"):
        build_learning_rate_schedule(0.0, schedule="constant")

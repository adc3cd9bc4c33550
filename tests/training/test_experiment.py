"""`train_and_evaluate` end to end on a small Keras model (the features are model-agnostic)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_axial.training.callbacks import NonFiniteLossError
from keras_axial.training.checkpoints import CheckpointManager
from keras_axial.training.experiment import ExperimentMismatchError, check_model_dir
from keras_axial.training.experiment import train_and_evaluate
from keras_axial.training.optimizers import Lookahead
from tests.training import toy_experiment


def run(model_dir, **overrides):
    return train_and_evaluate(model_dir, **toy_experiment.experiment_kwargs(**overrides))


def test_fit_and_custom_loop_train_identically_and_write_the_run_folder(tmp_path):
    fit = run(tmp_path / "fit", loop="fit")
    custom = run(tmp_path / "custom", loop="custom")
    assert fit["step"] == custom["step"] == 6
    for a, b in zip(fit["model"].get_weights(), custom["model"].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fit["history"]["loss"], custom["history"]["loss"], rtol=1e-6)
    # Evaluations at the interval and at the end, against the global step.
    assert [step for step, _ in fit["evaluations"]] == [4, 6]
    assert set(fit["evaluations"][0][1]) == {"top1", "top5", "num_images"}
    assert fit["history"]["val_top5"][-1] >= fit["history"]["val_top1"][-1]
    run_dir = tmp_path / "fit"
    metrics = json.loads((run_dir / "evaluation" / "metrics-000000006.json").read_text())
    assert metrics["step"] == 6 and 0 <= metrics["top1"] <= 1
    assert [e["step"] for e in CheckpointManager(run_dir / "checkpoints", None).checkpoints] == [
        3,
        6,
    ]
    assert list((run_dir / "logs" / "train").glob("events.out.tfevents.*"))
    assert list((run_dir / "logs" / "eval").glob("events.out.tfevents.*"))
    assert json.loads((run_dir / "summary.json").read_text())["step"] == 6


def test_resumes_mid_epoch_and_ends_at_the_same_step(tmp_path):
    run(tmp_path, train_steps=6, checkpoint_interval=3)
    # Make the run look killed after the step-3 checkpoint (mid-epoch: evaluation every 4).
    index_path = tmp_path / "checkpoints" / "checkpoint.json"
    index = json.loads(index_path.read_text())
    index["checkpoints"] = [e for e in index["checkpoints"] if e["step"] == 3]
    index_path.write_text(json.dumps(index))
    for name in ("evaluation/metrics-000000004.json", "evaluation/metrics-000000006.json"):
        (tmp_path / name).unlink()
    resumed = run(tmp_path, train_steps=6, checkpoint_interval=3)
    assert resumed["resumed_from"] == 3 and resumed["step"] == 6
    assert [step for step, _ in resumed["evaluations"]] == [4, 6]
    assert len(resumed["history"]["loss"]) == 2  # the cut first epoch (1 step) and the last
    assert resumed["model"].optimizer.iterations.numpy() == 6
    # A finished run started again trains no further.
    again = run(tmp_path, train_steps=6, checkpoint_interval=3)
    assert again["step"] == 6 and again["history"] == {}


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poisoned(input_context, batch_size, seed=0):
        dataset = toy_experiment.train_dataset_fn(input_context, batch_size, seed)
        return dataset.enumerate().map(
            lambda i, example: (
                tf.where(i >= 4, np.float32("nan"), example[0]),
                example[1],
            )
        )

    with pytest.raises(NonFiniteLossError, match=r"nan at step 5.*ckpt-000000003.*\(step 3\)"):
        run(tmp_path, train_dataset_fn=poisoned)
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == ["checkpoint.json", "ckpt-000000003.weights.h5"]
    restored = toy_experiment.model_fn()
    restored.compile(toy_experiment.experiment_kwargs()["optimizer_fn"](0.01), "mse")
    CheckpointManager(tmp_path / "checkpoints", restored).restore()
    assert all(np.isfinite(w).all() for w in restored.get_weights())


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(tmp_path, policy):
    result = run(tmp_path, mixed_precision=policy, train_steps=2, eval_interval=2)
    model = result["model"]
    assert model.dtype_policy.name == policy
    assert model.get_layer("conv").kernel.dtype == "float32"  # variables stay float32
    assert np.isfinite(result["history"]["loss"]).all()
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.optimizer.inner_optimizer, Lookahead)
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored afterwards


def test_evaluate_mode_scores_a_checkpoint_and_writes_json(tmp_path):
    run(tmp_path)
    result = run(tmp_path, mode="evaluate", checkpoint=str(tmp_path / "checkpoints" /
                                                           "ckpt-000000003.weights.h5"))
    assert result["step"] == 3
    written = json.loads((tmp_path / "evaluation" / "evaluate-000000003.json").read_text())
    assert written["metrics"]["num_images"] == 16 and written["step"] == 3
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        run(tmp_path / "empty", mode="evaluate")


def test_model_dir_holding_another_experiment_is_refused(tmp_path):
    check_model_dir(tmp_path, "TRAIN_STEPS = 10\nLR = 0.1\n")
    check_model_dir(tmp_path, "TRAIN_STEPS = 10\nLR = 0.1\n")  # same experiment: resume
    with pytest.raises(ExperimentMismatchError, match=r"(?s)different experiment.*\+LR = 0.2"):
        check_model_dir(tmp_path, "TRAIN_STEPS = 10\nLR = 0.2\n")
    (tmp_path / "other" / "checkpoints").mkdir(parents=True)
    with pytest.raises(ExperimentMismatchError, match="no 'config.gin'"):
        check_model_dir(tmp_path / "other", "X = 1\n")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"task": "detection"}, "Unknown task"),
        ({"train_steps": 0}, "train_steps must be a positive integer"),
        ({"mixed_precision": "float16"}, "Unknown mixed_precision"),
        ({"loop": "jax"}, "Unknown loop"),
        ({"global_batch_size": None}, "exactly one"),
    ],
)
def test_bad_arguments_fail_before_training(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        run(tmp_path, **overrides)
    assert not (tmp_path / "checkpoints").exists()


def test_xla_flag(tmp_path):
    from keras_axial.train import flag_bindings

    assert flag_bindings(tpu="grpc://10.0.0.2:8470", jit_compile=True) == [
        "get_strategy.tpu_address = 'grpc://10.0.0.2:8470'",
        "train_and_evaluate.jit_compile = True",
    ]
    result = run(tmp_path, jit_compile=True, train_steps=2, eval_interval=2)
    assert result["model"].jit_compile is True
    assert np.isfinite(result["history"]["loss"]).all()

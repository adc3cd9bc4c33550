"""`python -m keras_axial.train / .evaluate` on the tiny synthetic experiment."""

import json
import signal
import sys
import time

import h5py
import numpy as np
import pytest

from keras_axial import train
from keras_axial.training.experiment import ExperimentMismatchError
from keras_axial.training.gin_config import GinConfigError
from tests.training.conftest import REPO_ROOT, TINY_EXPERIMENT, start, tiny_bindings
from tests.training.conftest import train_command, wait


def h5_arrays(path):
    arrays = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda name, item: arrays.__setitem__(name, item[()])
            if isinstance(item, h5py.Dataset)
            else None
        )
    return arrays


def assert_nothing_half_written(model_dir):
    leftovers = [
        p for p in model_dir.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")
    ] + list(model_dir.rglob(".tmp-*"))
    assert not leftovers, leftovers
    index = json.loads((model_dir / "checkpoints" / "checkpoint.json").read_text())
    listed = {entry["file"] for entry in index["checkpoints"]}
    on_disk = {p.name for p in (model_dir / "checkpoints").glob("ckpt-*")}
    assert listed == on_disk
    for entry in index["checkpoints"]:
        assert h5_arrays(model_dir / "checkpoints" / entry["file"])  # readable, not truncated
    for name in ("config.gin", "operative_config.gin"):
        assert (model_dir / name).read_text()
    return index


def test_killed_run_resumes_from_its_last_checkpoint_then_evaluates(
    tmp_path, synthetic_tfrecords
):
    model_dir = tmp_path / "run"
    # Periodic evaluation is left to the evaluate CLI at the end (it traces the model once).
    bindings = tiny_bindings(
        synthetic_tfrecords, train_steps=10, **{"train_and_evaluate.eval_dataset_fn": None}
    )
    command = train_command(model_dir, bindings)
    process = start(command)
    index_path = model_dir / "checkpoints" / "checkpoint.json"
    deadline = time.time() + 400
    killed_at = None
    while time.time() < deadline and process.poll() is None:
        if index_path.exists():
            steps = [e["step"] for e in json.loads(index_path.read_text())["checkpoints"]]
            if steps and 4 <= steps[-1] < 10:
                process.send_signal(signal.SIGKILL)
                killed_at = steps[-1]
                break
        time.sleep(0.05)
    output = process.communicate()[0]
    assert killed_at is not None, f"no mid-run checkpoint to kill at:\n{output[-3000:]}"
    assert process.returncode == -signal.SIGKILL

    returncode, output = wait(start(command))
    assert returncode == 0, output[-4000:]
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["resumed_from"] >= killed_at > 0
    assert summary["step"] == 10
    index = assert_nothing_half_written(model_dir)
    assert index["checkpoints"][-1]["step"] == 10
    assert list((model_dir / "logs" / "train").glob("events.out.tfevents.*"))

    # python -m keras_axial.evaluate on the finished run, with the experiment's own bindings.
    evaluate = train_command(model_dir, tiny_bindings(synthetic_tfrecords, train_steps=10))
    evaluate[2] = "keras_axial.evaluate"
    returncode, output = wait(start(evaluate))
    assert returncode == 0, output[-4000:]
    result = json.loads((model_dir / "evaluation" / "evaluate-000000010.json").read_text())
    assert result["step"] == 10 and result["metrics"]["num_images"] == 2
    assert {"pq", "sq", "rq", "pq_things", "pq_stuff", "miou"} <= set(result["metrics"])
    assert '"pq":' in output


def test_same_seed_and_config_give_identical_weights(tmp_path):
    """Two processes, op determinism on (the toy experiment: determinism is model-agnostic)."""
    script = REPO_ROOT / "tests" / "training" / "toy_experiment.py"
    overrides = json.dumps({"deterministic": True, "seed": 7})
    runs = [
        start([sys.executable, str(script), f"--model_dir={tmp_path / name}",
               f"--output={tmp_path / name}.npz", f"--overrides={overrides}"])
        for name in ("a", "b")
    ]
    for process in runs:
        returncode, output = wait(process)
        assert returncode == 0, output[-4000:]
    first, second = (np.load(tmp_path / f"{name}.npz") for name in ("a", "b"))
    assert int(first["step"]) == 6
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


@pytest.mark.slow
def test_same_seed_and_config_give_identical_weights_with_the_tiny_model(
    tmp_path, synthetic_tfrecords
):
    bindings = tiny_bindings(
        synthetic_tfrecords, train_steps=3, **{"train_and_evaluate.deterministic": True}
    )
    runs = [start(train_command(tmp_path / name, bindings)) for name in ("a", "b")]
    for process in runs:
        returncode, output = wait(process)
        assert returncode == 0, output[-4000:]
    first, second = (
        h5_arrays(tmp_path / name / "checkpoints" / "ckpt-000000003.weights.h5")
        for name in ("a", "b")
    )
    assert first.keys() == second.keys() and len(first) > 50
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_wrong_binding_exits_with_one_clear_line(tmp_path, synthetic_tfrecords):
    bindings = tiny_bindings(synthetic_tfrecords) + ["train_and_evaluate.trian_steps = 3"]
    returncode, output = wait(start(train_command(tmp_path, bindings)), timeout=120)
    assert returncode == 1
    assert "keras_axial.train: error: Invalid --gin_bindings='train_and_evaluate.trian_steps" in output
    assert "doesn't have a parameter named 'trian_steps'" in output
    assert "Traceback" not in output
    assert not tmp_path.joinpath("checkpoints").exists()


@pytest.mark.parametrize(
    "binding, error, message",
    [
        ("no_such_builder.value = 1", GinConfigError, "No configurable matching 'no_such_builder'"),
        ("DATA_DIR = '/no/such/folder'", FileNotFoundError, "/no/such/folder"),
    ],
)
def test_errors_before_training(tmp_path, synthetic_tfrecords, binding, error, message):
    bindings = tiny_bindings(synthetic_tfrecords) + [binding]
    with pytest.raises(error, match=message):
        train.run([REPO_ROOT / TINY_EXPERIMENT], bindings, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_model_dir_of_another_experiment_is_refused_before_training(tmp_path, synthetic_tfrecords):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "config.gin").write_text("TRAIN_STEPS = 99\n")
    with pytest.raises(ExperimentMismatchError, match="holds a different experiment"):
        train.run([REPO_ROOT / TINY_EXPERIMENT], tiny_bindings(synthetic_tfrecords), model_dir)
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.gin"]
    with pytest.raises(GinConfigError, match="No --gin_file"):
        train.run([], [], model_dir)


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra_gin_file, bindings",
    [
        # MirroredStrategy over 2 logical CPUs: the real model with synchronized batch norm.
        ("gin/runtime/cpu_mirrored.gin", {}),
        (None, {"train_and_evaluate.mixed_precision": "'mixed_bfloat16'"}),
        (None, {"train_and_evaluate.mixed_precision": "'mixed_float16'"}),
        (None, {"train_and_evaluate.jit_compile": True}),
    ],
    ids=["cpu_mirrored", "mixed_bfloat16", "mixed_float16", "xla"],
)
def test_tiny_model_trains_under_each_runtime(tmp_path, synthetic_tfrecords, extra_gin_file,
                                              bindings):
    command = train_command(tmp_path, tiny_bindings(synthetic_tfrecords, train_steps=2, **bindings))
    if extra_gin_file:
        command.insert(4, f"--gin_file={extra_gin_file}")
    returncode, output = wait(start(command), timeout=1200)
    assert returncode == 0, output[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["step"] == 2
    assert all(np.isfinite(v).all() for v in summary["history"].values())
    if extra_gin_file:
        assert summary["num_replicas"] == 2

"""Multi-replica training in subprocesses, compared with a single-device run of the same batches."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.training import toy_experiment

SCRIPT = pathlib.Path(toy_experiment.__file__)
REPO_ROOT = SCRIPT.parent.parent.parent


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(strategy, model_dir, output, env=None):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), f"--strategy={strategy}", f"--model_dir={model_dir}",
         f"--output={output}"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process, timeout=240):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"subprocess timed out:\n{output[-4000:]}")
    assert process.returncode == 0, output[-4000:]
    return output


def weights(npz):
    return [npz[f"weight_{i}"] for i in range(len([k for k in npz.files if k.startswith("weight_")]))]


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    from keras_axial.training.experiment import train_and_evaluate

    directory = tmp_path_factory.mktemp("single")
    result = train_and_evaluate(directory / "run", **toy_experiment.experiment_kwargs())
    return {
        "loss": np.asarray(result["history"]["loss"]),
        "weights": result["model"].get_weights(),
        "step": result["step"],
    }


def assert_same_training(npz, reference):
    assert int(npz["step"]) == reference["step"] == 6
    np.testing.assert_allclose(npz["loss"], reference["loss"], rtol=1e-5)
    for got, expected in zip(weights(npz), reference["weights"]):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_mirrored_two_cpu_replicas_with_sync_batch_norm_equals_one_device(tmp_path, single_device):
    process = launch("mirrored", tmp_path / "run", tmp_path / "out.npz")
    finish(process)
    result = np.load(tmp_path / "out.npz")
    assert int(result["replicas"]) == 2
    assert_same_training(result, single_device)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["num_replicas"] == 2 and summary["global_batch_size"] == 8


def test_two_workers_end_identical_and_match_the_single_process_loss(tmp_path, single_device):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(
            launch(
                "multi_worker",
                tmp_path / "run",
                tmp_path / f"worker{index}.npz",
                env={"TF_CONFIG": tf_config},
            )
        )
    logs = [finish(process) for process in processes]
    chief, other = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    assert int(chief["replicas"]) == int(other["replicas"]) == 2, logs[0][-2000:]
    for a, b in zip(weights(chief), weights(other)):
        np.testing.assert_array_equal(a, b)
    assert_same_training(chief, single_device)
    # Only the chief writes checkpoints, metrics and logs.
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints[0] == "checkpoint.json" and "ckpt-000000006.weights.h5" in checkpoints
    assert sorted(p.name for p in (tmp_path / "run" / "evaluation").iterdir()) == [
        "metrics-000000004.json",
        "metrics-000000006.json",
    ]

"""Fixtures for the training tests: a small synthetic TFRecord dataset and the tiny CLI run."""

import os
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
TINY_EXPERIMENT = "gin/experiments/synthetic_tiny.gin"


@pytest.fixture(scope="session")
def synthetic_tfrecords(tmp_path_factory):
    from keras_axial.data.synthetic import generate_synthetic_tfrecords

    directory = tmp_path_factory.mktemp("synthetic_tfrecords")
    generate_synthetic_tfrecords(
        directory, splits={"train": 8, "val": 2}, seed=0, min_size=64, max_size=96
    )
    return directory


def tiny_bindings(data_dir, train_steps=6, **extra):
    """Gin bindings that shrink synthetic_tiny.gin to a few seconds of training."""
    bindings = {
        "DATA_DIR": repr(str(data_dir)),
        "TRAIN_STEPS": train_steps,
        "GLOBAL_BATCH_SIZE": 2,
        "CROP_SIZE": "(65, 65)",
        "WARMUP_STEPS": 2,
        "train_and_evaluate.eval_interval": train_steps,
        "train_and_evaluate.eval_max_batches": 1,
        "train_and_evaluate.checkpoint_interval": 2,
        "train_and_evaluate.summary_interval": 2,
    }
    bindings.update(extra)
    return [f"{name} = {value}" for name, value in bindings.items()]


def train_command(model_dir, bindings, gin_file=TINY_EXPERIMENT):
    return [
        sys.executable,
        "-m",
        "keras_axial.train",
        f"--gin_file={gin_file}",
        *(f"--gin_bindings={binding}" for binding in bindings),
        f"--model_dir={model_dir}",
    ]


def start(command):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait(process, timeout=400):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"{process.args} timed out:\n{output[-4000:]}")
    return process.returncode, output

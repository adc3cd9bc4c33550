"""Shared pytest set-up: quiet TensorFlow, deterministic seeds, the repository root on sys.path."""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# `export/` and `benchmarks/` are run from the repository root, not installed.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    import keras
    import numpy as np

    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture
def repo_root():
    return REPO_ROOT

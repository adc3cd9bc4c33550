import json

import pytest
import tensorflow as tf

from keras_axial.training import strategies
from keras_axial.training.strategies import get_strategy, resolve_batch_sizes


def test_default_and_one_device_strategies():
    assert get_strategy("default") is tf.distribute.get_strategy()
    one = get_strategy("one_device")
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    assert one.num_replicas_in_sync == 1
    assert strategies.is_chief(one) and not strategies.is_multi_worker(one)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"global_batch_size": 32}, (32, 4)),
        ({"per_replica_batch_size": 2}, (16, 2)),
    ],
)
def test_batch_sizes_are_explicit(kwargs, expected):
    assert resolve_batch_sizes(8, **kwargs) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "exactly one"),
        ({"global_batch_size": 8, "per_replica_batch_size": 1}, "exactly one"),
        ({"global_batch_size": 12}, "does not split evenly over 8"),
        ({"per_replica_batch_size": 0}, "positive integer"),
    ],
)
def test_bad_batch_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve_batch_sizes(8, **kwargs)


def test_bad_strategy_arguments(monkeypatch):
    with pytest.raises(ValueError, match="Unknown strategy name.*'gpu'"):
        get_strategy("gpu")
    with pytest.raises(ValueError, match="communication"):
        get_strategy("multi_worker", communication="mpi")
    with pytest.raises(RuntimeError, match="Could not connect to the TPU.*--tpu"):
        get_strategy("tpu")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG must be JSON"):
        get_strategy("multi_worker")


def test_chief_is_read_from_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert strategies.is_chief_from_environment()
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    for index, chief in ((0, True), (1, False)):
        monkeypatch.setenv(
            "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        )
        assert strategies.is_chief_from_environment() is chief

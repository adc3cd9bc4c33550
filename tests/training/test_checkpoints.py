import json

import keras
import numpy as np
import pytest

from keras_axial.training.checkpoints import CheckpointManager, NonFiniteWeightsError
from keras_axial.training.checkpoints import latest_checkpoint, step_of


def small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_keeps_the_newest_and_restores_weights_and_step(tmp_path):
    model = small_model()
    manager = CheckpointManager(tmp_path, model, max_to_keep=2)
    for step in (10, 20, 30):
        model.layers[0].kernel.assign(np.full((3, 2), step, np.float32))
        manager.save(step, {"loss": 0.5})
    assert [e["step"] for e in manager.checkpoints] == [20, 30]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.json",
        "ckpt-000000020.weights.h5",
        "ckpt-000000030.weights.h5",
    ]
    restored = small_model()
    entry = CheckpointManager(tmp_path, restored).restore()
    assert entry["step"] == 30 and entry["loss"] == 0.5
    np.testing.assert_array_equal(restored.layers[0].kernel.numpy(), 30)
    older = CheckpointManager(tmp_path, restored).restore(tmp_path / "ckpt-000000020.weights.h5")
    assert older["step"] == 20
    np.testing.assert_array_equal(restored.layers[0].kernel.numpy(), 20)
    assert latest_checkpoint(tmp_path)["step"] == 30 and step_of(entry["path"]) == 30


def test_leftovers_of_a_killed_save_are_removed_and_ignored(tmp_path):
    model = small_model()
    CheckpointManager(tmp_path, model).save(5)
    # What a kill can leave: a half-written temporary file, a finished file the index does not
    # name yet, a temporary index.
    (tmp_path / ".tmp-123-ckpt-000000010.weights.h5").write_bytes(b"half")
    (tmp_path / "ckpt-000000010.weights.h5").write_bytes(b"not indexed")
    (tmp_path / ".checkpoint.json.abc.tmp").write_text("{")
    manager = CheckpointManager(tmp_path, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.json",
        "ckpt-000000005.weights.h5",
    ]
    assert manager.latest()["step"] == 5


def test_refuses_to_save_non_finite_weights(tmp_path):
    model = small_model()
    manager = CheckpointManager(tmp_path, model)
    manager.save(1)
    model.layers[0].kernel.assign(np.full((3, 2), np.nan, np.float32))
    with pytest.raises(NonFiniteWeightsError, match="step 2.*NaN or Inf.*ckpt-000000001"):
        manager.save(2)
    assert [e["step"] for e in manager.checkpoints] == [1]
    assert not list(tmp_path.glob(".tmp-*"))


def test_clear_errors(tmp_path):
    model = small_model()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CheckpointManager(tmp_path, model).restore(tmp_path / "ckpt-000000001.weights.h5")
    (tmp_path / "checkpoint.json").write_text(json.dumps({"nothing": 1}))
    with pytest.raises(ValueError, match="checkpoint index"):
        CheckpointManager(tmp_path, model)
    with pytest.raises(ValueError, match="Not a keras_axial checkpoint name"):
        step_of("model.h5")

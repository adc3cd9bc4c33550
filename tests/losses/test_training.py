"""The losses inside `model.compile` + `model.fit`, and their scaling under tf.distribute."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

from keras_axial.losses import PanopticLoss
from keras_axial.losses import WeightedBootstrappedCrossEntropy
from keras_axial.losses import WeightedL1
from keras_axial.losses import WeightedMeanSquaredError
from tests.losses.test_losses import panoptic_example


def tiny_outputs(inputs):
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    return {
        "semantic_logits": keras.layers.Conv2D(3, 1, name="semantic_logits")(features),
        "center_heatmap": keras.layers.Conv2D(1, 1, name="center_heatmap")(features),
        "offsets": keras.layers.Conv2D(2, 1, name="offsets")(features),
    }


class PanopticModel(keras.Model):
    """What Axial-DeepLab does: the whole target dict goes to PanopticLoss."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.loss.components(y, y_pred)["total_loss"]


def test_fit_with_panoptic_loss_on_image_target_dicts():
    targets, _ = panoptic_example(batch=4, height=8, width=8)
    images = np.random.default_rng(1).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, targets)).batch(2)
    inputs = keras.Input((8, 8, 3))
    model = PanopticModel(inputs, tiny_outputs(inputs))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=PanopticLoss())
    history = model.fit(dataset, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    # Keras reports the mean of the per-batch losses; the loss itself on the same batches:
    assert np.isclose(
        model.evaluate(dataset, verbose=0),
        np.mean([float(PanopticLoss()(t, model(x))) for x, t in dataset]),
        rtol=1e-4,
    )


def test_fit_with_one_loss_per_output_and_pixel_weights():
    targets, _ = panoptic_example(batch=4, height=8, width=8)
    images = np.random.default_rng(2).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    labels = {
        "semantic_logits": targets["semantic"],
        "center_heatmap": targets["center_heatmap"],
        "offsets": targets["offsets"],
    }
    pixel_weights = {
        "semantic_logits": targets["semantic_weights"],
        "center_heatmap": targets["center_weights"],
        "offsets": targets["offset_weights"],
    }
    dataset = tf.data.Dataset.from_tensor_slices((images, labels, pixel_weights)).batch(4)
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, tiny_outputs(inputs))
    model.compile(
        optimizer="adam",
        loss={
            "semantic_logits": WeightedBootstrappedCrossEntropy(),
            "center_heatmap": WeightedMeanSquaredError(),
            "offsets": WeightedL1(),
        },
        loss_weights={"semantic_logits": 1.0, "center_heatmap": 200.0, "offsets": 0.01},
    )
    value = model.evaluate(dataset, verbose=0, return_dict=True)["loss"]
    predictions = model.predict(images, verbose=0)
    expected = float(PanopticLoss()(targets, predictions))
    assert np.isclose(value, expected, rtol=1e-4)


DISTRIBUTED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_axial.losses import PanopticLoss
    from tests.losses.test_losses import panoptic_example

    targets, predictions = panoptic_example(batch=4)
    loss = PanopticLoss()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    dataset = tf.data.Dataset.from_tensors((targets, predictions)).unbatch().batch(4)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    @tf.function
    def step(batch):
        def replica(t, p):
            values = loss.components(t, p)
            return values["total_loss"], values["semantic_loss"], loss(t, p)
        return strategy.run(replica, args=batch)

    total, semantic, called = step(batch)
    local = lambda x: [float(v) for v in strategy.experimental_local_results(x)]
    halves = [
        {k: v[i * 2:(i + 1) * 2] for k, v in d.items()} for i in range(2) for d in (targets,)
    ]
    preds = [{k: v[i * 2:(i + 1) * 2] for k, v in predictions.items()} for i in range(2)]
    print(json.dumps({
        "total": local(total), "semantic": local(semantic), "called": local(called),
        "unscaled_total": [float(loss(t, p)) for t, p in zip(halves, preds)],
        "unscaled_semantic": [float(loss.components(t, p)["semantic_loss"])
                              for t, p in zip(halves, preds)],
    }))
    """
)


def test_replica_losses_are_divided_by_the_number_of_replicas(repo_root):
    # A strategy with two replicas must live in its own process (see the team notes).
    result = subprocess.run(
        [sys.executable, "-c", DISTRIBUTED_SCRIPT],
        cwd=repo_root,
        env={**os.environ, "PYTHONPATH": str(repo_root), "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(values["total"], np.array(values["unscaled_total"]) / 2, rtol=1e-5)
    np.testing.assert_allclose(values["called"], values["total"], rtol=1e-6)
    np.testing.assert_allclose(values["semantic"], values["unscaled_semantic"], rtol=1e-5)

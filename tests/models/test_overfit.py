"""A tiny Axial-DeepLab overfits a few synthetic images with `model.fit` and PanopticLoss."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_axial.losses import PanopticLoss
from tests.models.conftest import synthetic_panoptic_batch, tiny_model


# Slow: tracing the train step of even the tiny model builds ~54k TensorFlow ops (most of them
# in the axial-attention layers and their gradients), 40 s to 2 min of Python on 2 CPU cores;
# eager steps cost seconds each. The fast suite trains every registered model for one eager
# step with PanopticLoss instead (test_registry.py).
@pytest.mark.slow
def test_tiny_axial_deeplab_overfits_synthetic_images():
    images, targets, spec = synthetic_panoptic_batch(4, 33)
    model = tiny_model("axial_deeplab_s", num_classes=spec.num_classes, span=5)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=PanopticLoss(ignore_label=spec.ignore_label),
    )
    data = tf.data.Dataset.from_tensors((images, targets)).repeat()
    history = model.fit(data, steps_per_epoch=10, epochs=15, shuffle=False,
                        verbose=0).history
    assert history["loss"][0] / history["loss"][-1] >= 5.0, history["loss"]
    # Not only the center heatmap's mean level: the semantic term must be learnt too.
    assert history["semantic_loss"][0] / history["semantic_loss"][-1] >= 2.0, history
    assert np.all(np.isfinite(history["offset_loss"]))

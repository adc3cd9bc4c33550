"""Exports shared by the export tests (built once per session: tracing a model takes seconds).

Random weights give Axial-DeepLab heads whose outputs are all close to 0 (TruncatedNormal(0.01)
output convolutions): no center passes the 0.1 threshold and the post-processing never groups
an instance. `make_outputs_realistic` rescales the three output convolutions so that logits,
heatmap and offsets have trained-model magnitudes, and verification covers the whole
post-processing (centers, grouping, majority vote, renumbering, scores).
"""

import export_test_helpers
import pytest
from export_test_helpers import EXPERIMENT
from export_test_helpers import IMAGE_SIZES
from export_test_helpers import make_outputs_realistic

from export import images as images_lib


@pytest.fixture(autouse=True)
def _seed_everything():
    """Replaces tests/conftest.py's fixture of the same name for the export tests.

    Its `keras.utils.set_random_seed` (`tf.random.set_seed`) and `keras.backend.clear_session`
    both clear TensorFlow's kernel cache, which drops the instantiated functions of the
    session's loaded exports: every test would pay their graph optimisation again (about
    8 s each). The exports are session fixtures built with explicit seeds; only NumPy's
    global seed is reset here.
    """
    import numpy as np

    np.random.seed(1234)
    yield


@pytest.fixture(scope="session")
def verify_images():
    images = []
    for index, size in enumerate(IMAGE_SIZES):
        images.extend(images_lib.synthetic_images(1, size, seed=index))
    return images


@pytest.fixture(scope="session")
def panoptic_run(tmp_path_factory):
    """A training run folder of the tiny synthetic experiment with one checkpoint.

    The model is built by the experiment's gin files and saved by the training
    `CheckpointManager`, optimizer state included, like `python -m keras_axial.train` does.
    """
    import keras

    from export import building
    from keras_axial.training.checkpoints import CheckpointManager

    run = tmp_path_factory.mktemp("run")
    settings = building.load_gin_experiment([EXPERIMENT])
    keras.utils.set_random_seed(7)
    model = make_outputs_realistic(settings["model_fn"]())
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    CheckpointManager(run / "checkpoints", model).save(step=100)
    return run, model


@pytest.fixture(scope="session")
def panoptic_export(panoptic_run, tmp_path_factory):
    """SavedModel of the tiny synthetic experiment, written by the command line."""
    from absl import flags

    from export import saved_model

    run, model = panoptic_run
    output = tmp_path_factory.mktemp("exports") / "panoptic"
    flag_values = flags.FlagValues()
    saved_model.define_flags(flag_values)
    flag_values([
        "saved_model", f"--gin_file={EXPERIMENT}", f"--checkpoint={run}",
        f"--output={output}",
    ])
    metadata = saved_model.run(flag_values)
    return output, metadata, model


@pytest.fixture(scope="session")
def panoptic_saved_model(panoptic_export):
    """The panoptic SavedModel loaded once (`export.runners.SavedModelRunner`)."""
    from export import runners

    return runners.SavedModelRunner(panoptic_export[0])


@pytest.fixture(scope="session")
def panoptic_tflite(panoptic_export, tmp_path_factory):
    from export import tflite

    output = tmp_path_factory.mktemp("tflite") / "panoptic.tflite"
    tflite.convert_saved_model(panoptic_export[0], output)
    return output


@pytest.fixture
def run_without_keras_axial():
    """`fn(script, cwd) -> stdout` (see `export_test_helpers.run_without_keras_axial`)."""
    return export_test_helpers.run_without_keras_axial

"""Exports shared by the export tests (built once per session: tracing a model takes seconds).

Random weights give Axial-DeepLab heads whose outputs are all close to 0 (TruncatedNormal(0.01)
output convolutions): no center passes the 0.1 threshold and the post-processing never groups
an instance. `make_outputs_realistic` rescales the three output convolutions so that logits,
heatmap and offsets have trained-model magnitudes, and verification covers the whole
post-processing (centers, grouping, majority vote, renumbering, scores).
"""

import os
import sys

import numpy as np
import pytest

from export import images as images_lib

# Two sizes: one valid (16k + 1 on both axes) and one the export must pad and crop back.
IMAGE_SIZES = ((33, 49), (45, 70))
EXPERIMENT = "gin/experiments/synthetic_tiny.gin"


def make_outputs_realistic(model, seed=0):
    """Rescales the output convolutions of an Axial-DeepLab's heads (in place).

    Targets: semantic logits of standard deviation 3, a center heatmap of mean 0.1 and
    standard deviation 0.15 (peaks above the 0.1 threshold), offsets of standard deviation 4
    pixels.
    """
    image = images_lib.synthetic_images(1, (65, 65), seed=seed)[0][1][None].astype(np.float32)
    outputs = model(image, training=False)
    targets = {
        "semantic_logits": ("semantic_head", 0.0, 3.0),
        "center_heatmap": ("center_head", 0.1, 0.15),
        "offsets": ("offset_head", 0.0, 4.0),
    }
    for key, (layer_name, mean, std) in targets.items():
        value = np.asarray(outputs[key])
        conv = model.get_layer(layer_name).output_conv
        scale = std / max(float(value.std()), 1e-12)
        conv.kernel.assign(np.asarray(conv.kernel) * scale)
        bias = np.asarray(conv.bias) * scale
        conv.bias.assign(bias - (value.mean() * scale) + mean)
    return model


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
    """`fn(script, cwd) -> stdout`: runs `script` in a Python whose imports of keras_axial
    fail (the package is installed in editable mode, so a meta-path hook refuses it)."""
    return _run_without_keras_axial


def _run_without_keras_axial(script, cwd):
    import subprocess

    environment = dict(os.environ)
    environment.pop("PYTHONPATH", None)
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"

    blocker = (
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'keras_axial' or name.startswith('keras_axial.'):\n"
        "            raise ImportError('keras_axial is blocked in this process')\n"
        "sys.meta_path.insert(0, _Block())\n"
        "sys.path = [p for p in sys.path if p not in ('', '.')]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker + script],
        capture_output=True, text=True, env=environment, cwd=str(cwd), timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout



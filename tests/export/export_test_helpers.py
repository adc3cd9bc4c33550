"""Helpers of the export tests (imported by conftest.py and the test modules)."""

import os
import sys

import numpy as np

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


def run_without_keras_axial(script, cwd):
    """Runs `script` in a Python whose imports of keras_axial fail (the package is installed
    in editable mode, so a meta-path hook refuses it); returns its stdout."""
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



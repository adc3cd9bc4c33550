"""`make demo` / `python -m keras_axial.demo`: the whole job at a few steps, and its guards."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHORT = ["--num_train_images=8", "--num_val_images=2", "--num_pictures=2"]


def run_demo(*flags, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "keras_axial.demo", *flags],
        cwd=REPO_ROOT, capture_output=True, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if check and result.returncode != 0:
        pytest.fail(f"The demo failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
                    f"{result.stderr[-4000:]}")
    return result


def check_outputs(output_dir, train_steps):
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["train_steps"] == train_steps
    assert metrics["exports_equal_keras"] is True
    for runtime in ("keras", "saved_model", "tflite"):
        assert {"pq", "sq", "rq", "pq_things", "pq_stuff", "miou"} <= set(metrics[runtime])
        assert 0.0 <= metrics[runtime]["pq"] <= 1.0
    # The exports compute what Keras computes: the same held-out scores.
    for runtime in ("saved_model", "tflite"):
        for name in ("pq", "sq", "rq", "miou"):
            assert metrics[runtime][name] == pytest.approx(metrics["keras"][name], abs=1e-6)
    files = metrics["files"]
    assert (pathlib.Path(files["saved_model"]) / "saved_model.pb").is_file()
    assert pathlib.Path(files["tflite"]).stat().st_size > 0
    assert (pathlib.Path(files["dataset"]) / "annotations" / "panoptic_val.json").is_file()
    assert list(pathlib.Path(files["tensorboard"]).rglob("events.out.tfevents.*"))
    pictures = sorted(pathlib.Path(files["pictures"]).glob("*.png"))
    assert len(pictures) == 2
    from PIL import Image

    width, height = Image.open(pictures[0]).size
    assert width > 2 * height  # image | ground truth | prediction side by side
    return metrics


def test_demo_runs_end_to_end_and_guards_its_folder(tmp_path):
    output_dir = tmp_path / "demo"
    result = run_demo(f"--output_dir={output_dir}", "--train_steps=3", *SHORT)
    check_outputs(output_dir, 3)
    for line in ("Held-out PQ (Keras)", "Held-out PQ (TFLite)",
                 str(output_dir / "export" / "model.tflite")):
        assert line in result.stdout
    assert re.search(r"Exports equal Keras +yes", result.stdout)
    assert not [p for p in output_dir.rglob("*") if ".tmp" in p.name]

    # Another dataset size in the same folder is refused, naming the folder and both settings.
    result = run_demo(f"--output_dir={output_dir}", "--train_steps=3", "--num_train_images=9",
                      "--num_val_images=2", check=False)
    assert result.returncode == 1
    assert f"keras_axial.demo: error: '{output_dir}' holds a demo dataset" in result.stderr
    assert "--fresh" in result.stderr


def test_demo_outside_the_repository_says_where_to_run_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_axial.demo", f"--output_dir={tmp_path / 'demo'}"],
        cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 1
    assert "runs from the keras-axial repository root" in result.stderr
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_make_demo_short_setting_and_resume(tmp_path):
    """`make demo` itself, briefly; a second run resumes (reuses the data, skips training)."""
    output_dir = tmp_path / "demo"
    arguments = ["make", "demo", "DEMO_STEPS=20",
                 f"DEMO_ARGS=--output_dir={output_dir} {' '.join(SHORT)}"]
    subprocess.run(arguments, cwd=REPO_ROOT, check=True)
    first = check_outputs(output_dir, 20)
    assert first["seconds"]["dataset"] > 0
    result = subprocess.run(arguments, cwd=REPO_ROOT, check=True, capture_output=True, text=True)
    assert "already trained for 20 >= 20 steps" in result.stdout
    second = check_outputs(output_dir, 20)
    assert second["seconds"]["dataset"] == 0
    assert second["keras"]["pq"] == first["keras"]["pq"]

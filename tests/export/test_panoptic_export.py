"""Axial-DeepLab (tiny synthetic experiment) through SavedModel, TFLite and verify."""

import json

import numpy as np
import pytest
import tensorflow as tf

from export import metadata as metadata_lib
from export import runners
from export import tflite_ops
from export import verify


def test_saved_model_and_tflite_equal_keras(panoptic_export, panoptic_saved_model,
                                            panoptic_tflite, verify_images):
    saved_model, _, model = panoptic_export
    report = verify.verify_export(
        panoptic_saved_model, verify_images, tflite=panoptic_tflite, batch_sizes=(1, 3)
    )
    print(report.format(1e-4))
    assert report.passed
    assert {"1x33x49", "3x33x49", "1x45x70", "3x45x70"} <= set(report.batches)
    checks = {(c.runtime, c.signature, c.output): c for c in report.checks}
    assert checks[("tflite", "serving_default", "panoptic")].exact
    assert checks[("tflite", "network", "semantic_logits")].worst_ratio <= 1e-4
    # The post-processing really ran: thing instances with scores came out.
    outputs = panoptic_saved_model("serving_default", np.stack([verify_images[0][1]] * 3))
    label_divisor = 256
    things = outputs["panoptic"] // label_divisor
    assert np.isin(things, [3, 4, 5]).any()
    assert (outputs["instance_panoptic_ids"] >= 0).sum() > 3
    assert outputs["instance_scores"].max() > 0
    # The Keras reference was rebuilt from the metadata: the checkpoint's model agrees.
    reference = runners.KerasRunner(model, metadata_lib.read_metadata(saved_model))
    expected = reference("serving_default", verify_images[-1][1][None])
    np.testing.assert_array_equal(
        expected["panoptic"],
        panoptic_saved_model("serving_default", verify_images[-1][1][None])["panoptic"],
    )


def test_verify_fails_on_a_mismatch(panoptic_export, panoptic_saved_model, verify_images,
                                    tmp_path):
    saved_model, _, model = panoptic_export
    # Weights that differ slightly from the exported ones (a stale export).
    original = model.get_weights()
    try:
        model.set_weights([w * 1.001 if w.dtype.kind == "f" else w for w in original])
        model.save_weights(str(tmp_path / "other.weights.h5"))
    finally:
        model.set_weights(original)
    report = verify.verify_export(panoptic_saved_model, verify_images[:1], batch_sizes=(1,),
                                  checkpoint=tmp_path / "other.weights.h5")
    text = report.format(1e-4)
    assert not report.passed
    assert "FAIL savedmodel/network/semantic_logits" in text and "RESULT: FAIL" in text


def test_metadata_lists_the_baked_settings(panoptic_export, panoptic_saved_model):
    saved_model, metadata, _ = panoptic_export
    on_disk = json.loads((saved_model / "assets" / metadata_lib.FILE_NAME).read_text())
    assert on_disk == json.loads(json.dumps(metadata))
    assert on_disk["postprocessing"] == {
        "thing_class_ids": [3, 4, 5], "label_divisor": 256, "void_label": 255,
        "center_threshold": 0.1, "nms_kernel": 7, "keep_k_centers": 200,
        # gin/experiments/synthetic_tiny.gin sets STUFF_AREA_LIMIT = 64.
        "stuff_area_limit": 64,
    }
    assert on_disk["dataset"]["name"] == "synthetic"
    assert on_disk["input"]["serving_default"]["dtype"] == "uint8"
    assert on_disk["input"]["network"]["padding"]["multiple"] == 16
    assert on_disk["source"]["checkpoint"].endswith("ckpt-000000100.weights.h5")
    assert on_disk["source"]["gin_files"] == ["gin/experiments/synthetic_tiny.gin"]
    assert set(on_disk["versions"]) >= {"tensorflow", "keras", "keras_axial"}
    loaded = panoptic_saved_model.loaded
    assert loaded.metadata_file.asset_path.numpy().decode().endswith(metadata_lib.FILE_NAME)
    with pytest.raises(FileNotFoundError, match="No export metadata"):
        metadata_lib.read_metadata(saved_model / "variables")


def test_served_by_tensorflow_alone(panoptic_export, panoptic_saved_model, verify_images,
                                    run_without_keras_axial, tmp_path):
    saved_model, metadata, _ = panoptic_export
    batches = {f"{h}x{w}": np.stack([image] * 3) for (h, w), image in
               [(img.shape[:2], img) for _, img in verify_images]}
    np.savez(tmp_path / "inputs.npz", **batches)
    script = f"""
import json, numpy as np, tensorflow as tf
assert 'keras_axial' not in __import__('sys').modules
loaded = tf.saved_model.load({str(saved_model)!r})
serve = loaded.signatures['serving_default']
inputs = np.load({str(tmp_path / 'inputs.npz')!r})
results = {{key: {{k: v.numpy() for k, v in serve(images=tf.constant(inputs[key])).items()}}
           for key in inputs.files}}
np.savez({str(tmp_path / 'outputs.npz')!r},
         **{{f"{{key}}/{{k}}": v for key, out in results.items() for k, v in out.items()}})
metadata = json.load(open(loaded.metadata_file.asset_path.numpy().decode()))
try:
    import keras_axial
    print('IMPORTED')
except ImportError:
    print('BLOCKED')
print(metadata['postprocessing']['label_divisor'])
"""
    stdout = run_without_keras_axial(script, tmp_path)
    assert stdout.split() == ["BLOCKED", "256"]
    outputs = np.load(tmp_path / "outputs.npz")
    reference = panoptic_saved_model
    for key, batch in batches.items():
        expected = reference("serving_default", batch)
        assert expected["panoptic"].shape == batch.shape[:3]
        for name, value in expected.items():
            np.testing.assert_array_equal(outputs[f"{key}/{name}"], value)


@pytest.mark.parametrize(
    "signature, images, message",
    [
        ("serving_default", np.zeros((1, 17, 17, 3), np.float32),
         "expected to be a uint8 tensor but is a float tensor"),
        ("serving_default", np.zeros((1, 17, 17, 4), np.uint8),
         r"Signature .{1,2}serving_default.{1,2} expects uint8 images of shape "
         r"\[batch, height, width, 3\].*Received shape:\] \[1 17 17 4\]"),
        ("serving_default", np.zeros((17, 17, 3), np.uint8),
         r"expects uint8 images of shape .*Received shape:\] \[17 17 3\]"),
        ("serving_default", np.zeros((1, 0, 17, 3), np.uint8),
         r"height and width >= 1.*Received shape:\] \[1 0 17 3\]"),
        ("network", np.zeros((2, 17, 17, 1), np.float32),
         r"Signature .{1,2}network.{1,2} expects float32 images .*"
         r"Received shape:\] \[2 17 17 1\]"),
    ],
)
def test_corrupt_inputs_give_clear_errors(panoptic_saved_model, signature, images, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message) as error:
        panoptic_saved_model.signatures[signature](images=tf.constant(images))
    # Stopped at the input check, not deep inside the network.
    assert "conv" not in str(error.value).lower()


def test_tflite_runner_checks_inputs_and_resizes(panoptic_tflite, verify_images):
    runner = runners.TFLiteRunner(panoptic_tflite)
    with pytest.raises(ValueError, match=r"expects uint8 images of shape \[batch, height, "
                                         r"width, 3\]. Received uint8 \(1, 17, 17, 4\)"):
        runner("serving_default", np.zeros((1, 17, 17, 4), np.uint8))
    with pytest.raises(ValueError, match="Received float32"):
        runner("serving_default", np.zeros((1, 17, 17, 3), np.float32))
    for batch in (1, 3, 2):
        images = np.stack([verify_images[-1][1]] * batch)
        assert runner("serving_default", images)["panoptic"].shape == images.shape[:3]


def test_tflite_has_both_signatures_builtin_ops_and_metadata(panoptic_tflite):
    assert sorted(tflite_ops.signature_keys(panoptic_tflite)) == ["network", "serving_default"]
    operators = tflite_ops.check_operators(panoptic_tflite)
    assert {"CONV_2D", "BATCH_MATMUL", "TOPK_V2", "WHILE"} <= set(operators)
    embedded = json.loads(tflite_ops.read_embedded_metadata(panoptic_tflite))
    sidecar = metadata_lib.read_metadata(panoptic_tflite)
    assert embedded == sidecar
    assert embedded["tflite"]["quantization"] == "none"
    assert embedded["postprocessing"]["stuff_area_limit"] == 64

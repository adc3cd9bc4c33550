"""Quantized TFLite exports of the tiny synthetic experiment: builtins only, int8 where
calibrated, PQ against float reported (slow; the calibration itself has a fast test in
test_calibration.py)."""

import pytest

from export import runners
from export import tflite
from export import tflite_ops
from export import verify


def _convert_and_verify(saved_model, output, quantize, images, **options):
    metadata = tflite.convert_saved_model(saved_model.path, output, quantize=quantize,
                                          **options)
    report = verify.verify_export(saved_model, images, tflite=output, batch_sizes=(1, 3))
    print(report.format(1e-4))
    return metadata, report


@pytest.mark.slow
def test_int8_panoptic(panoptic_saved_model, verify_images, tmp_path):
    image_folder = tmp_path / "calibration"
    image_folder.mkdir()
    from PIL import Image

    for name, image in verify_images:
        Image.fromarray(image).save(image_folder / f"{name}.png")
    metadata, report = _convert_and_verify(
        panoptic_saved_model, tmp_path / "int8.tflite", "int8", verify_images,
        representative_data=str(image_folder), representative_count=2,
        representative_size=(33, 33),
    )
    assert metadata["tflite"]["quantization"] == "int8"
    # The network runs in int8 (convolutions, matmuls), the post-processing in float32.
    assert metadata["tflite"]["int8_operators"] > 100
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(tflite_ops.check_operators(tmp_path / "int8.tflite"))
    assert report.quantization == "int8"
    assert 0.0 <= report.panoptic_quality["pq"] <= 1.0
    assert report.panoptic_quality["num_images"] == 8  # two sizes, batches of 1 and 3
    # Quantized outputs are reported, not held to the float32 tolerances ...
    assert all(not c.checked for c in report.checks if c.runtime == "tflite")
    assert report.passed
    # ... unless asked.
    strict = verify.verify_export(panoptic_saved_model, verify_images[:1], batch_sizes=(1,),
                                  tflite=tmp_path / "int8.tflite", min_pq=1.01)
    assert not strict.passed and "--min_pq" in strict.format(1e-4)
    runner = runners.TFLiteRunner(tmp_path / "int8.tflite")
    assert runner("serving_default", verify_images[0][1][None])["panoptic"].shape == (1, 33, 49)


@pytest.mark.slow
@pytest.mark.parametrize("quantize", ["float16", "dynamic"])
def test_weight_quantized_panoptic(panoptic_saved_model, verify_images, tmp_path, quantize):
    metadata, report = _convert_and_verify(
        panoptic_saved_model, tmp_path / f"{quantize}.tflite", quantize, verify_images
    )
    assert metadata["tflite"]["quantization"] == quantize
    assert report.passed and report.quantization == quantize
    # float16 weights barely move the outputs: the panoptic maps stay nearly the same.
    if quantize == "float16":
        assert report.panoptic_quality["pq"] > 0.9
    assert 0.0 <= report.panoptic_quality["pq"] <= 1.0

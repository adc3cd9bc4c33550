"""An Axial-ResNet classifier (tiny, registry, random weights) through the command lines.

Its TFLite conversion runs in the registry sweep (test_registry_export.py, slow).
"""

import pytest
from absl import flags

from export import images as images_lib
from export import metadata as metadata_lib
from export import saved_model
from export import tflite
from export import verify


def _run(module, argv):
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    flag_values([module.__name__] + argv)
    return module.run(flag_values)


@pytest.fixture(scope="module")
def classifier_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classifier")
    metadata = _run(saved_model, ["--model=axial_resnet_s", "--tiny", "--seed=3",
                                  f"--output={folder / 'saved_model'}"])
    return folder, metadata


def test_classifier_exports_and_verifies(classifier_export):
    folder, metadata = classifier_export
    assert metadata["task"] == "classifier"
    assert metadata["model"]["registry_name"] == "axial_resnet_s"
    assert metadata["input"]["serving_default"]["padding"] is None
    images = (images_lib.synthetic_images(1, (33, 33), seed=1)
              + images_lib.synthetic_images(1, (40, 52), seed=2))
    report = verify.verify_export(folder / "saved_model", images, batch_sizes=(1, 3))
    print(report.format(1e-4))
    assert report.passed
    outputs = {(c.runtime, c.signature, c.output) for c in report.checks}
    assert ("savedmodel", "serving_default", "probabilities") in outputs
    assert ("savedmodel", "network", "logits") in outputs
    assert {"1x33x33", "3x33x33", "1x40x52", "3x40x52"} <= set(report.batches)


def test_command_line_errors(classifier_export, tmp_path):
    folder, _ = classifier_export
    with pytest.raises(FileExistsError, match="already exists"):
        _run(saved_model, ["--model=axial_resnet_s", "--tiny",
                           f"--output={folder / 'saved_model'}"])
    with pytest.raises(Exception, match="exactly one of --model"):
        _run(saved_model, [f"--output={tmp_path / 'x'}"])
    with pytest.raises(Exception, match="--dataset applies to panoptic models"):
        _run(saved_model, ["--model=axial_resnet_s", "--dataset=coco",
                           f"--output={tmp_path / 'x'}"])
    with pytest.raises(ValueError, match="Unknown model name 'axial_resnet_q'"):
        _run(saved_model, ["--model=axial_resnet_q", f"--output={tmp_path / 'x'}"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _run(saved_model, ["--model=axial_resnet_s", "--tiny",
                           f"--checkpoint={tmp_path / 'nothing.weights.h5'}",
                           f"--output={tmp_path / 'x'}"])
    with pytest.raises(ValueError, match="must end in '.tflite'"):
        _run(tflite, [f"--saved_model={folder / 'saved_model'}",
                      f"--output={tmp_path / 'model.lite'}"])
    with pytest.raises(ValueError, match="only used with --quantize=int8"):
        _run(tflite, [f"--saved_model={folder / 'saved_model'}", "--quantize=dynamic",
                      f"--representative_data={tmp_path}", f"--output={tmp_path / 'm.tflite'}"])
    with pytest.raises(FileNotFoundError, match="No export metadata"):
        _run(tflite, [f"--saved_model={tmp_path}", f"--output={tmp_path / 'm.tflite'}"])
    with pytest.raises(FileNotFoundError, match="is neither a file, a folder nor a glob"):
        _run(verify, [f"--saved_model={folder / 'saved_model'}",
                      f"--images={tmp_path / 'missing.png'}"])
    assert metadata_lib.read_metadata(folder / "saved_model")["task"] == "classifier"

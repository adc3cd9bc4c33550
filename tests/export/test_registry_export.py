"""Every registered model, tiny, exports to SavedModel and TFLite and passes verify at batch
1 and 3 and two image sizes (slow: about a minute and a half per model on two cores)."""

import pytest
from export_test_helpers import IMAGE_SIZES
from export_test_helpers import make_outputs_realistic

from export import building
from export import images as images_lib
from export import saved_model
from export import tflite
from export import verify
from keras_axial.models import list_models


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_registered_model_exports_and_verifies(name, tmp_path):
    task = "panoptic" if name.startswith("axial_deeplab") else "classifier"
    overrides = {"num_classes": 6} if task == "panoptic" else {"num_classes": 10}
    model, overrides = building.build_registry_model(name, tiny=True, overrides=overrides)
    if task == "panoptic":
        make_outputs_realistic(model)
    saved_model.export_saved_model(
        model, tmp_path / "saved_model",
        dataset_spec="synthetic" if task == "panoptic" else None,
        postprocess_options={"stuff_area_limit": 64} if task == "panoptic" else None,
        registry_name=name, overrides=overrides,
    )
    tflite.convert_saved_model(tmp_path / "saved_model", tmp_path / "model.tflite")
    images = []
    for index, size in enumerate(IMAGE_SIZES):
        images.extend(images_lib.synthetic_images(1, size, seed=index))
    report = verify.verify_export(tmp_path / "saved_model", images,
                                  tflite=tmp_path / "model.tflite", batch_sizes=(1, 3),
                                  keras_model=model)
    print(report.format(1e-4))
    assert report.passed
    assert len(report.batches) == 4

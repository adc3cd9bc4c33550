"""keras-axial data: specs, converters, TFRecords, the synthetic dataset, targets, pipelines.

`DatasetSpec` and the spec registry are plain Python and load eagerly; everything that needs
TensorFlow loads on first use, so `from keras_axial.data import DatasetSpec` stays cheap.

Public API (see each module for details):

- `DatasetSpec`, `get_dataset_spec`, `register_dataset_spec`, `list_dataset_specs`
  (`keras_axial.data.dataset_spec`).
- `generate_panoptic_targets` (`keras_axial.data.targets`).
- `build_panoptic_dataset`, `panoptic_input_fn`, `panoptic_dataset_fn`
  (`keras_axial.data.panoptic_pipeline`).
- `build_classification_dataset`, `build_image_folder_dataset`, `build_imagenet_tfds_dataset`,
  `classification_input_fn` (`keras_axial.data.classification`).
- `generate_synthetic_dataset` (`keras_axial.data.synthetic`).
- `convert_coco_panoptic`, `convert_cityscapes_panoptic`, `convert_mapillary_panoptic`,
  `convert_custom_panoptic` (`keras_axial.data.convert_*`), `validate_panoptic_dataset`,
  `validate_image_folder` (`keras_axial.data.validate`).
"""

import importlib

from keras_axial.data.dataset_spec import DatasetSpec
from keras_axial.data.dataset_spec import get_dataset_spec
from keras_axial.data.dataset_spec import list_dataset_specs
from keras_axial.data.dataset_spec import register_dataset_spec

_LAZY = {
    "generate_panoptic_targets": "targets",
    "build_panoptic_dataset": "panoptic_pipeline",
    "panoptic_dataset_fn": "panoptic_pipeline",
    "panoptic_input_fn": "panoptic_pipeline",
    "build_classification_dataset": "classification",
    "build_image_folder_dataset": "classification",
    "build_imagenet_tfds_dataset": "classification",
    "classification_input_fn": "classification",
    "generate_synthetic_dataset": "synthetic",
    "convert_coco_panoptic": "convert_coco",
    "convert_cityscapes_panoptic": "convert_cityscapes",
    "convert_mapillary_panoptic": "convert_mapillary",
    "convert_custom_panoptic": "convert_custom",
    "validate_panoptic_dataset": "validate",
    "validate_image_folder": "validate",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"keras_axial.data.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'keras_axial.data' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

"""Evaluation: panoptic quality, semantic mIoU, instance AP, COCO / Cityscapes panoptic files.

NumPy (+ pycocotools for AP); no TensorFlow. Streaming metrics take NumPy label maps in the
package convention (`panoptic = semantic * label_divisor + instance`, void = `ignore_label`).

- `PanopticQuality`: streaming PQ / SQ / RQ with COCO panopticapi semantics.
- `SemanticMeanIoU`: streaming confusion-matrix mIoU.
- `InstanceAveragePrecision`: COCO mask AP of thing segments from panoptic predictions and
  `{panoptic_id: score}` dicts (pycocotools COCOeval).
- `evaluate_coco_panoptic` and `python -m keras_axial.evaluation.coco_panoptic`: PQ of COCO-format
  folders, equal to panopticapi's `pq_compute`.
- `CocoPanopticWriter`, `CityscapesPanopticWriter`, `read_panoptic_annotation`,
  `read_panoptic_png`: the file formats.
"""

import importlib

_LAZY = {
    "PanopticQuality": "panoptic_quality",
    "PanopticStatistics": "panoptic_quality",
    "SemanticMeanIoU": "semantic_iou",
    "InstanceAveragePrecision": "instance_ap",
    "evaluate_coco_panoptic": "coco_panoptic",
    "CocoPanopticWriter": "panoptic_format",
    "CityscapesPanopticWriter": "panoptic_format",
    "PanopticFormatError": "panoptic_format",
    "read_panoptic_annotation": "panoptic_format",
    "read_panoptic_png": "panoptic_format",
    "write_panoptic_png": "panoptic_format",
    "load_panoptic_json": "panoptic_format",
    "rgb_to_id": "panoptic_format",
    "id_to_rgb": "panoptic_format",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"keras_axial.evaluation.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'keras_axial.evaluation' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

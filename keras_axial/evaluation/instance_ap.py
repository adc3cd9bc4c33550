"""Instance mask AP of thing segments from panoptic predictions (pycocotools COCOeval)."""

import contextlib
import io

import numpy as np

from keras_axial.evaluation.panoptic_quality import gather
from keras_axial.evaluation.panoptic_quality import label_convention
from keras_axial.evaluation.panoptic_quality import panoptic_batch
from keras_axial.evaluation.panoptic_quality import present_values
from keras_axial.evaluation.panoptic_quality import split_panoptic_ids

# COCOeval's summary, in its order, under the names COCO uses.
_SUMMARY_KEYS = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"
)
# Masks are encoded this many at a time ([H, W, chunk] uint8 in memory).
_ENCODE_CHUNK = 16


class InstanceAveragePrecision:
    """COCO-style mask AP@[.5:.95] of the thing segments of panoptic predictions.

    Ground truth: each thing segment (`class * label_divisor + instance`, instance > 0) is an
    instance; instance 0 of a thing class is a crowd region (`iscrowd=1`: detections matched to
    it are ignored). Void and stuff pixels play no part. Predictions: every thing segment of the
    predicted panoptic map is a detection, scored by the `{panoptic_id: score}` dict given with
    it (from `keras_axial.postprocessing.scores_by_segment`). Evaluation is pycocotools'
    `COCOeval` with `iouType="segm"` over the thing classes.

    Args:
        num_classes: number of contiguous classes.
        thing_class_ids: contiguous ids of the thing classes (the AP categories).
        label_divisor: panoptic label divisor.
        ignore_label: semantic id of void pixels. Defaults to `255`.
        max_detections: detections per image kept by COCOeval (its largest `maxDets`).
            Defaults to `100`.

    Example:
        >>> metric = InstanceAveragePrecision(19, range(11, 19), label_divisor=1000)
        >>> metric.update_state(gt_panoptic, pred_panoptic, scores)  # scores: one dict per image
        >>> metric.result()["AP"]

    Reference: Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014.
    """

    def __init__(
        self, num_classes, thing_class_ids, label_divisor, ignore_label=255, max_detections=100
    ):
        (
            self.num_classes,
            self.thing_class_ids,
            self.label_divisor,
            self.ignore_label,
            self._is_thing,
        ) = label_convention(num_classes, thing_class_ids, label_divisor, ignore_label)
        if not self.thing_class_ids:
            raise ValueError("`thing_class_ids` is empty: instance AP needs thing classes.")
        if not isinstance(max_detections, int) or max_detections < 10:
            raise ValueError(
                f"`max_detections` must be an int >= 10. Received: max_detections={max_detections!r}"
            )
        self.max_detections = max_detections
        self.reset_state()

    def reset_state(self):
        """Forgets everything seen so far."""
        self._images = []
        self._ground_truth = []
        self._detections = []

    def _thing_segments(self, panoptic, name):
        values = present_values(panoptic, name)
        semantic, _, void = split_panoptic_ids(
            values, self.num_classes, self.label_divisor, self.ignore_label, name
        )
        things = ~void & self._is_thing[np.where(void, 0, semantic)]
        return values, things

    def _annotations(self, panoptic, values, selected, image_id, first_id):
        """COCO annotations (RLE, area, box) of the segments `values[selected]`."""
        from pycocotools import mask as mask_utils

        index = gather(panoptic, values, np.arange(values.size))
        wanted = np.flatnonzero(selected)
        annotations = []
        for start in range(0, wanted.size, _ENCODE_CHUNK):
            chunk = wanted[start : start + _ENCODE_CHUNK]
            masks = np.asfortranarray((index[..., None] == chunk).astype(np.uint8))
            for value, rle in zip(values[chunk], mask_utils.encode(masks)):
                annotations.append(
                    {
                        "id": first_id + len(annotations),
                        "image_id": image_id,
                        "panoptic_id": int(value),
                        "category_id": int(value // self.label_divisor),
                        "segmentation": rle,
                        "area": float(mask_utils.area(rle)),
                        "bbox": mask_utils.toBbox(rle).tolist(),
                        "iscrowd": 0,
                    }
                )
        return annotations

    def update_state(self, y_true, y_pred, scores):
        """Adds a batch of images.

        Args:
            y_true: int ground-truth panoptic maps `[H, W]` or `[B, H, W]`.
            y_pred: int predicted panoptic maps of the same shape.
            scores: for `[H, W]` inputs a dict `{panoptic_id: score}` covering every predicted
                thing segment; for `[B, H, W]` a sequence of B such dicts.
        """
        y_true, y_pred = panoptic_batch(y_true, y_pred)
        if isinstance(scores, dict) and len(y_true) == 1:
            scores = [scores]
        if isinstance(scores, dict) or len(scores) != len(y_true):
            raise ValueError(
                f"`scores` must hold one {{panoptic_id: score}} dict per image ({len(y_true)})."
            )
        for gt_map, pred_map, image_scores in zip(y_true, y_pred, scores):
            image_id = len(self._images) + 1
            height, width = gt_map.shape
            self._images.append({"id": image_id, "height": height, "width": width})

            values, things = self._thing_segments(gt_map, "ground-truth map")
            annotations = self._annotations(
                gt_map, values, things, image_id, len(self._ground_truth) + 1
            )
            for annotation in annotations:
                annotation["iscrowd"] = int(annotation["panoptic_id"] % self.label_divisor == 0)
            self._ground_truth.extend(annotations)

            values, things = self._thing_segments(pred_map, "predicted map")
            predicted = {int(v) for v in values[things]}
            scored = {int(k) for k in image_scores}
            if predicted != scored:
                raise ValueError(
                    f"Image {image_id - 1}: `scores` must give a score to exactly the predicted "
                    "thing segments. Thing segments without a score: "
                    f"{sorted(predicted - scored)[:10]}; scores of ids that are not predicted "
                    f"thing segments: {sorted(scored - predicted)[:10]}."
                )
            image_scores = {int(k): float(v) for k, v in image_scores.items()}
            annotations = self._annotations(
                pred_map, values, things, image_id, len(self._detections) + 1
            )
            for annotation in annotations:
                annotation["score"] = image_scores[annotation["panoptic_id"]]
            self._detections.extend(annotations)

    def result(self):
        """Runs COCOeval.

        Returns:
            `{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
            "ARl", "per_class_AP": {class_id: AP}}` as fractions (`AR100` is AR at
            `max_detections`); NaN where COCO reports -1 (no ground truth in that range).
        """
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        undefined = dict.fromkeys(_SUMMARY_KEYS, float("nan"))
        undefined["per_class_AP"] = {c: float("nan") for c in self.thing_class_ids}
        if not self._images:
            return undefined
        categories = [{"id": c} for c in self.thing_class_ids]
        with contextlib.redirect_stdout(io.StringIO()):
            ground_truth = COCO()
            ground_truth.dataset = {
                "images": self._images,
                "annotations": self._ground_truth,
                "categories": categories,
            }
            ground_truth.createIndex()
            detections = COCO()
            detections.dataset = {
                "images": self._images,
                "annotations": self._detections,
                "categories": categories,
            }
            detections.createIndex()
            evaluator = COCOeval(ground_truth, detections, iouType="segm")
            evaluator.params.imgIds = [image["id"] for image in self._images]
            evaluator.params.catIds = list(self.thing_class_ids)
            evaluator.params.maxDets = [1, 10, self.max_detections]
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        result = {
            key: (float(value) if value > -1 else float("nan"))
            for key, value in zip(_SUMMARY_KEYS, evaluator.stats)
        }
        # precision: [iou thresholds, recall points, classes, area ranges, max detections]
        precision = evaluator.eval["precision"][:, :, :, 0, -1]
        result["per_class_AP"] = {}
        for k, class_id in enumerate(self.thing_class_ids):
            values = precision[:, :, k]
            values = values[values > -1]
            result["per_class_AP"][class_id] = float(values.mean()) if values.size else float("nan")
        return result

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "thing_class_ids": list(self.thing_class_ids),
            "label_divisor": self.label_divisor,
            "ignore_label": self.ignore_label,
            "max_detections": self.max_detections,
        }

    def __repr__(self):
        return f"InstanceAveragePrecision({self.get_config()}, num_images={len(self._images)})"

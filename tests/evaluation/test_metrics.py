import math

import numpy as np
import pytest

from keras_axial.evaluation import InstanceAveragePrecision
from keras_axial.evaluation import SemanticMeanIoU


def test_semantic_mean_iou_known_values():
    metric = SemanticMeanIoU(num_classes=4, ignore_label=255)
    y_true = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    y_pred = np.array([[0, 1, 1, 1], [255, 2, 3, 0]])
    metric.update_state(y_true, y_pred)
    result = metric.result()
    # class 0: tp 1, fn 1, fp 0 -> 1/2; class 1: tp 2, fp 1 -> 2/3; class 2: tp 1, fn 1 (void
    # prediction) -> 1/2; class 3: predicted only on ignored pixels -> absent.
    assert result["per_class_iou"][0] == pytest.approx(0.5)
    assert result["per_class_iou"][1] == pytest.approx(2 / 3)
    assert result["per_class_iou"][2] == pytest.approx(0.5)
    assert math.isnan(result["per_class_iou"][3])
    assert result["miou"] == pytest.approx((0.5 + 2 / 3 + 0.5) / 3) and result["n"] == 3
    assert result["pixel_accuracy"] == pytest.approx(4 / 6)


def test_semantic_mean_iou_on_panoptic_maps_and_merge():
    panoptic = SemanticMeanIoU(num_classes=3, label_divisor=1000)
    semantic = SemanticMeanIoU(num_classes=3)
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, (2, 8, 8))
    y_pred = rng.integers(0, 3, (2, 8, 8))
    panoptic.update_state(y_true * 1000 + 5, y_pred * 1000 + 7)
    semantic.update_state(y_true[:1], y_pred[:1])
    other = SemanticMeanIoU(num_classes=3)
    other.update_state(y_true[1:], y_pred[1:])
    semantic.merge_state(other)
    assert (semantic.confusion_matrix == panoptic.confusion_matrix).all()
    with pytest.raises(ValueError, match=r"classes \[7\]"):
        semantic.update_state(np.zeros((2, 2), int), np.full((2, 2), 7))
    with pytest.raises(ValueError, match="same shape"):
        semantic.update_state(np.zeros((2, 2), int), np.zeros((2, 3), int))


def _ground_truth():
    gt = np.full((64, 64), 3 * 256, np.int32)  # stuff class 3
    gt[5:25, 5:25] = 1 * 256 + 1
    gt[30:60, 30:60] = 1 * 256 + 2
    gt[0:4, 40:64] = 1 * 256  # a crowd region of class 1
    gt[60:, :] = 255 * 256  # void
    return gt


def test_instance_ap_perfect_and_crowd():
    gt = _ground_truth()
    metric = InstanceAveragePrecision(4, [0, 1], label_divisor=256)
    pred = gt.copy()
    pred[0:4, 40:64] = 1 * 256 + 9  # a detection on the crowd region is ignored, not a FP
    metric.update_state(gt, pred, {257: 0.9, 258: 0.8, 265: 0.95})
    result = metric.result()
    assert result["AP"] == pytest.approx(1.0) and result["AP50"] == pytest.approx(1.0)
    assert result["per_class_AP"][1] == pytest.approx(1.0)
    assert math.isnan(result["per_class_AP"][0])  # no ground truth of class 0


def test_instance_ap_partial_case():
    gt = _ground_truth()
    pred = np.full_like(gt, 3 * 256)
    pred[5:25, 5:25] = 1 * 256 + 1  # exact, score 0.9
    pred[40:50, 0:10] = 1 * 256 + 3  # false positive, score 0.8; gt #2 missed
    metric = InstanceAveragePrecision(4, [0, 1], label_divisor=256)
    metric.update_state(gt[None], pred[None], [{257: 0.9, 259: 0.8}])
    result = metric.result()
    # Precision 1 up to recall 0.5, then nothing: 51 of COCO's 101 recall points.
    assert result["AP"] == pytest.approx(51 / 101)
    assert result["AR100"] == pytest.approx(0.5)
    # Swapping the scores puts the false positive first: precision 0.5 up to recall 0.5.
    metric.reset_state()
    metric.update_state(gt, pred, {257: 0.5, 259: 0.8})
    assert metric.result()["AP"] == pytest.approx(0.5 * 51 / 101)


def test_instance_ap_checks_scores():
    gt = _ground_truth()
    metric = InstanceAveragePrecision(4, [0, 1], label_divisor=256)
    with pytest.raises(ValueError, match=r"without a score: \[258\]"):
        metric.update_state(gt, gt, {257: 0.9, 256: 0.2})
    with pytest.raises(ValueError, match="one .* dict per image"):
        metric.update_state(np.stack([gt, gt]), np.stack([gt, gt]), {257: 1.0})
    assert math.isnan(InstanceAveragePrecision(4, [1], 256).result()["AP"])

import contextlib
import io
import json
import os

import numpy as np
import pytest

from keras_axial.evaluation import PanopticQuality
from keras_axial.evaluation import evaluate_coco_panoptic
from keras_axial.evaluation import write_panoptic_png

from panoptic_test_data import IGNORE_LABEL
from panoptic_test_data import LABEL_DIVISOR
from panoptic_test_data import TOY_DATASET


def panopticapi_pq(paths):
    from panopticapi.evaluation import pq_compute

    with contextlib.redirect_stdout(io.StringIO()):
        return pq_compute(paths["gt_json"], paths["pred_json"], paths["gt_folder"], paths["pred_folder"])


def assert_same_results(ours, reference, category_keys=None):
    for group in ("All", "Things", "Stuff"):
        assert ours[group]["n"] == reference[group]["n"], group
        for key in ("pq", "sq", "rq"):
            assert ours[group][key] == pytest.approx(float(reference[group][key]), abs=1e-9)
    keys = category_keys or reference["per_class"].keys()
    assert sorted(ours["per_class"]) == sorted(keys)
    for ours_key, reference_key in zip(sorted(ours["per_class"]), sorted(reference["per_class"])):
        for key in ("pq", "sq", "rq"):
            assert ours["per_class"][ours_key][key] == pytest.approx(
                float(reference["per_class"][reference_key][key]), abs=1e-9
            )


def test_folder_evaluator_and_streaming_metric_equal_panopticapi(coco_folders, counter):
    paths, pairs = coco_folders
    with open(paths["gt_json"]) as handle:
        gt = json.load(handle)
    # The generated data holds the cases that matter: crowd, void, gt-only and pred-only classes.
    assert any(s["iscrowd"] for a in gt["annotations"] for s in a["segments_info"])
    assert any((g // LABEL_DIVISOR == IGNORE_LABEL).any() for g, _ in pairs)
    assert any((p // LABEL_DIVISOR == 6).any() and not (g // LABEL_DIVISOR == 6).any() for g, p in pairs)

    reference = panopticapi_pq(paths)
    assert 0.2 < reference["All"]["pq"] < 0.9
    ours = evaluate_coco_panoptic(**paths, num_workers=2)
    assert_same_results(ours, reference)
    assert evaluate_coco_panoptic(**paths, num_workers=1) == ours

    metric = PanopticQuality(7, TOY_DATASET["thing_class_ids"], LABEL_DIVISOR, IGNORE_LABEL)
    for gt_map, pred_map in pairs[:10]:
        metric.update_state(gt_map, pred_map)
    metric.update_state(np.stack([g for g, _ in pairs[10:]]), np.stack([p for _, p in pairs[10:]]))
    assert metric.num_images == len(pairs)
    # Same numbers, keyed by contiguous class instead of COCO category id.
    assert_same_results(metric.result(), reference, category_keys=range(7))


def _write_folder(root, name, images, categories):
    """A COCO panoptic folder from explicit segment-id maps and segments_info lists."""
    folder = os.path.join(root, name)
    os.makedirs(folder)
    annotations = []
    for image_id, (ids, segments) in enumerate(images):
        write_panoptic_png(os.path.join(folder, f"{image_id}.png"), ids)
        for segment in segments:
            segment.setdefault("iscrowd", 0)
            segment["area"] = int((ids == segment["id"]).sum())
            segment["bbox"] = [0, 0, 1, 1]
        annotations.append({"image_id": image_id, "file_name": f"{image_id}.png", "segments_info": segments})
    path = os.path.join(root, f"{name}.json")
    with open(path, "w") as handle:
        json.dump({"annotations": annotations, "categories": categories}, handle)
    return path, folder


def test_two_crowd_segments_of_one_category_match_panopticapi(tmp_path):
    # panopticapi lets only the last listed crowd segment of a category excuse false positives;
    # the folder evaluator reproduces it.
    categories = [{"id": 5, "isthing": 1}, {"id": 9, "isthing": 0}]
    gt = np.full((20, 20), 1, np.int64)
    gt[:, :5] = 2  # crowd A
    gt[:, 15:] = 3  # crowd B
    gt[8:12, 8:12] = 0  # void
    pred = np.full((20, 20), 11, np.int64)
    pred[:, :5] = 12  # on crowd A: excused only if A is the crowd region panopticapi keeps
    pred[:, 15:] = 13  # on crowd B
    pred[8:12, 8:12] = 14  # on void: excused
    gt_segments = [
        {"id": 1, "category_id": 9},
        {"id": 2, "category_id": 5, "iscrowd": 1},
        {"id": 3, "category_id": 5, "iscrowd": 1},
    ]
    pred_segments = [
        {"id": 11, "category_id": 9},
        {"id": 12, "category_id": 5},
        {"id": 13, "category_id": 5},
        {"id": 14, "category_id": 5},
    ]
    gt_json, gt_folder = _write_folder(str(tmp_path), "gt", [(gt, gt_segments)], categories)
    pred_json, pred_folder = _write_folder(str(tmp_path), "pred", [(pred, pred_segments)], categories)
    paths = dict(gt_json=gt_json, gt_folder=gt_folder, pred_json=pred_json, pred_folder=pred_folder)
    ours = evaluate_coco_panoptic(**paths, num_workers=1)
    assert_same_results(ours, panopticapi_pq(paths))
    assert ours["per_class"][5]["rq"] == 0.0  # the segment on crowd A is one false positive


def test_hand_computed_cases(counter):
    metric = PanopticQuality(num_classes=3, thing_class_ids=[0, 2], label_divisor=10, ignore_label=9)
    gt = np.full((10, 10), 10)  # stuff class 1 everywhere
    gt[:, :4] = 1  # thing instance 0/1, 40 pixels
    gt[:, 8:] = 90  # void, 20 pixels
    gt[0, 4] = 0  # a crowd pixel of class 0
    pred = np.full((10, 10), 10)
    pred[:, :3] = 2  # 30 pixels of the 40: IoU 0.75, match
    pred[:, 8:] = 3  # predicted thing entirely on void: excused
    pred[0, 4] = 4  # predicted thing on the crowd pixel: excused
    pred[:, 3] = 20  # class 2 predicted only: false positive
    metric.update_state(gt, pred)
    result = metric.result()
    assert result["per_class"][0] == pytest.approx({"pq": 0.75, "sq": 0.75, "rq": 1.0})
    assert result["per_class"][1] == {"pq": 1.0, "sq": 1.0, "rq": 1.0}  # columns 4..7 both
    assert result["per_class"][2] == {"pq": 0.0, "sq": 0.0, "rq": 0.0}  # one false positive
    # As in panopticapi, SQ averages over every class in n, zeros included.
    assert result["All"] == pytest.approx({"pq": 1.75 / 3, "sq": 1.75 / 3, "rq": 2 / 3, "n": 3})
    assert result["Things"]["n"] == 2 and result["Stuff"]["n"] == 1

    # IoU exactly 0.5 is not a match (panopticapi: IoU > 0.5).
    metric.reset_state()
    gt = np.full((4, 4), 90)
    gt[:2, :] = 1
    pred = np.full((4, 4), 90)
    pred[:, :2] = 2  # 4 of 8 gt pixels, union 12 - 4 (pred on void) = 8 -> IoU 0.5
    metric.update_state(gt, pred)
    assert metric.statistics.true_positives[0] == 0
    assert metric.statistics.false_negatives[0] == 1
    assert metric.statistics.false_positives[0] == 1  # half on void is not more than half


def test_classes_absent_leave_the_mean_and_empty_groups_are_zero(counter):
    metric = PanopticQuality(num_classes=4, thing_class_ids=[3], label_divisor=100, ignore_label=255)
    labels = np.zeros((6, 6), np.int32)
    metric.update_state(labels, labels)
    result = metric.result()
    assert result["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 1}
    assert result["Things"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}


def test_ignore_label_inside_the_class_range_is_void(counter):
    metric = PanopticQuality(num_classes=3, thing_class_ids=[2], label_divisor=10, ignore_label=0)
    gt = np.array([[0, 10], [10, 21]])
    metric.update_state(gt, np.array([[21, 10], [10, 21]]))
    result = metric.result()
    assert 0 not in result["per_class"]
    # The predicted instance lies half on void: matched since void leaves the union.
    assert result["per_class"][2]["pq"] == 1.0


def test_merge_state_equals_one_pass(counter):
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 3, size=(4, 8, 8)) * 10 + rng.integers(0, 2, size=(4, 8, 8))
    preds = np.roll(maps, 1, axis=2)
    whole = PanopticQuality(3, [1], 10, 255)
    whole.update_state(maps, preds)
    first, second = PanopticQuality(3, [1], 10, 255), PanopticQuality(3, [1], 10, 255)
    first.update_state(maps[:2], preds[:2])
    second.update_state(maps[2:], preds[2:])
    first.merge_state(second)
    assert first.result() == whole.result() and first.num_images == 4
    with pytest.raises(ValueError, match="same configuration"):
        first.merge_state(PanopticQuality(4, [1], 10, 255))


def test_from_dataset_and_errors(counter):
    metric = PanopticQuality.from_dataset(TOY_DATASET)
    assert metric.get_config() == {
        "num_classes": 7, "thing_class_ids": [0, 1, 2], "label_divisor": 256, "ignore_label": 255,
    }
    with pytest.raises(ValueError, match="same shape"):
        metric.update_state(np.zeros((2, 3), int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match=r"class .*not in \[0, 7\)"):
        metric.update_state(np.full((2, 2), 9 * 256), np.zeros((2, 2), int))
    with pytest.raises(TypeError, match="integers"):
        metric.update_state(np.zeros((2, 2)), np.zeros((2, 2)))
    for gt, pred, name in (
        (np.full((2, 2), -3), np.zeros((2, 2), int), "ground-truth"),
        (np.zeros((2, 2), np.int32), np.array([[0, 0], [0, -7]]), "predicted"),
    ):
        with pytest.raises(ValueError, match=f"The {name} map has negative value -"):
            metric.update_state(gt, pred)
    with pytest.raises(ValueError, match="thing_class_ids"):
        PanopticQuality(3, [5], 10)


def test_images_of_different_sizes_in_one_metric(counter):
    rng = np.random.default_rng(1)
    maps = [rng.integers(0, 3, size) * 10 + rng.integers(0, 2, size) for size in [(9, 7), (4, 5), (9, 7)]]
    together = PanopticQuality(3, [1], 10, 255)
    merged = PanopticQuality(3, [1], 10, 255)
    for label_map in maps:
        prediction = np.flip(label_map, axis=1).astype(np.int16)  # any int dtype
        together.update_state(label_map, prediction)
        alone = PanopticQuality(3, [1], 10, 255)
        alone.update_state(label_map, prediction)
        merged.merge_state(alone)
    assert together.result() == merged.result()


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.int16, np.uint32, np.uint64])
def test_counter_paths_agree_on_any_int_dtype_and_layout(dtype, monkeypatch):
    from keras_axial.evaluation import panoptic_quality
    from panoptic_test_data import built_pair_counter

    built_pair_counter()
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 6, (3, 8, 6)) * 100 + rng.integers(0, 3, (3, 8, 6))
    maps = np.repeat(np.repeat(blocks, 5, axis=1), 5, axis=2)  # [3, 40, 30] segments
    maps[:, :4] = 99 * 100  # void rows (values fit every dtype tested)
    maps = maps.astype(dtype)
    preds = np.roll(maps, 2, axis=1)
    preds[0, 5:9] = 2 * 100 + 7  # a predicted-only segment
    views = [(maps, preds), (maps.transpose(0, 2, 1), preds.transpose(0, 2, 1)),
             (maps[:, ::2, 1:], preds[:, ::2, 1:])]  # contiguous, transposed, strided
    results = {}
    for path in ("c", "numpy"):
        if path == "numpy":
            monkeypatch.setattr(panoptic_quality, "_pair_counts", None)
        for k, (gt, pred) in enumerate(views):
            metric = PanopticQuality(6, [0, 1, 2], 100, 99)
            metric.update_state(gt, pred)
            results[path, k] = (metric.result(), metric.statistics.iou_sum.tolist())
    for k in range(len(views)):
        assert results["c", k] == results["numpy", k]
        assert 0 < results["c", k][0]["All"]["pq"] < 1

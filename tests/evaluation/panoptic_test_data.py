"""Generated panoptic data for the evaluation tests (imported by name: tests/ has no packages): label maps with the cases that matter to PQ
(crowd regions, void pixels, predictions on void, classes only in ground truth or only in
predictions, shifted / dropped / relabelled instances) and COCO folders written from them."""

import json
import os
import shutil

import numpy as np
import pytest
from keras_axial.evaluation import CocoPanopticWriter

LABEL_DIVISOR = 256
IGNORE_LABEL = 255

# Category ids are not contiguous (like COCO's); classes 0..2 are things, 3..6 stuff.
TOY_DATASET = {
    "class_names": ["person", "car", "dog", "grass", "sky", "road", "wall"],
    "thing_class_ids": [0, 1, 2],
    "label_divisor": LABEL_DIVISOR,
    "ignore_label": IGNORE_LABEL,
    "category_ids": [1, 3, 18, 92, 95, 149, 199],
    "colors": [
        (220, 20, 60), (0, 0, 142), (0, 226, 252), (152, 251, 152), (70, 130, 180),
        (128, 64, 128), (102, 102, 156),
    ],
}
THINGS = (0, 1, 2)
STUFF = (3, 4, 5, 6)


def _paint(label_map, rng, value, max_size):
    height, width = label_map.shape
    h = rng.integers(3, min(max_size, height - 1))
    w = rng.integers(3, min(max_size, width - 1))
    y = rng.integers(0, height - h + 1)
    x = rng.integers(0, width - w + 1)
    if rng.random() < 0.5:
        label_map[y : y + h, x : x + w] = value
    else:  # ellipse
        yy, xx = np.mgrid[:h, :w]
        inside = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2 <= 1
        label_map[y : y + h, x : x + w][inside] = value
    return (y, x, h, w)


def random_panoptic_pair(rng, height=48, width=64, stuff=STUFF, things=THINGS):
    """A ground-truth / prediction pair of panoptic maps with every PQ case."""
    gt = np.full((height, width), rng.choice(stuff) * LABEL_DIVISOR, np.int32)
    for _ in range(rng.integers(1, 4)):
        _paint(gt, rng, rng.choice(stuff) * LABEL_DIVISOR, max(height, width))
    next_instance = {c: 1 for c in things}
    boxes = []
    for _ in range(rng.integers(2, 7)):
        class_id = int(rng.choice(things))
        if rng.random() < 0.15:
            instance = 0  # crowd region
        else:
            instance = next_instance[class_id]
            next_instance[class_id] += 1
        value = class_id * LABEL_DIVISOR + instance
        boxes.append((value, _paint(gt, rng, value, 24)))
    if rng.random() < 0.7:
        _paint(gt, rng, IGNORE_LABEL * LABEL_DIVISOR, 16)

    pred = gt.copy()
    pred[gt // LABEL_DIVISOR == IGNORE_LABEL] = rng.choice(stuff) * LABEL_DIVISOR
    pred_next = {c: 100 for c in things}
    for value, (y, x, h, w) in boxes:
        mask = gt[y : y + h, x : x + w] == value
        roll = rng.random()
        if roll < 0.2:  # dropped instance: the prediction sees stuff there
            pred[y : y + h, x : x + w][mask] = rng.choice(stuff) * LABEL_DIVISOR
            continue
        class_id = value // LABEL_DIVISOR
        if roll < 0.35:  # wrong class
            class_id = int(rng.choice(things))
        new_value = class_id * LABEL_DIVISOR + pred_next[class_id]
        pred_next[class_id] += 1
        dy, dx = rng.integers(-3, 4, size=2)
        if roll > 0.8:
            dy, dx = rng.integers(-8, 9, size=2)
        ys, xs = np.nonzero(mask)
        ys = np.clip(ys + y + dy, 0, height - 1)
        xs = np.clip(xs + x + dx, 0, width - 1)
        pred[ys, xs] = new_value
    for _ in range(rng.integers(0, 3)):  # spurious predictions, some over void
        class_id = int(rng.choice(things))
        _paint(pred, rng, class_id * LABEL_DIVISOR + pred_next[class_id], 14)
        pred_next[class_id] += 1
    if rng.random() < 0.3:
        _paint(pred, rng, IGNORE_LABEL * LABEL_DIVISOR, 10)
    return gt, pred


def random_dataset(seed, num_images, height=48, width=64):
    """`num_images` pairs; classes 2 (dog) and 6 (wall) appear only in ground truth or only in
    predictions in some images."""
    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(num_images):
        if k % 3 == 0:  # dog never predicted here, wall only predicted
            gt, pred = random_panoptic_pair(rng, height, width, stuff=(3, 4, 5))
            pred[pred // LABEL_DIVISOR == 2] = 1 * LABEL_DIVISOR + 77
            pred[:6, :6] = 6 * LABEL_DIVISOR
        else:
            gt, pred = random_panoptic_pair(rng, height, width)
        pairs.append((gt, pred))
    return pairs


def write_coco_folders(root, pairs, dataset=TOY_DATASET):
    """Writes gt.json + gt/ and pred.json + pred/ under `root`; returns their paths."""
    paths = {
        "gt_json": os.path.join(root, "gt.json"),
        "gt_folder": os.path.join(root, "gt"),
        "pred_json": os.path.join(root, "pred.json"),
        "pred_folder": os.path.join(root, "pred"),
    }
    with CocoPanopticWriter(paths["gt_json"], paths["gt_folder"], dataset) as gt_writer, \
            CocoPanopticWriter(paths["pred_json"], paths["pred_folder"], dataset) as pred_writer:
        for image_id, (gt, pred) in enumerate(pairs, start=1):
            gt_writer.write(image_id, gt)
            pred_writer.write(image_id, pred)
    return paths


def edit_json(path, edit):
    with open(path) as handle:
        content = json.load(handle)
    edit(content)
    with open(path, "w") as handle:
        json.dump(content, handle)


def built_pair_counter():
    """The C pair counter of the COCO evaluator; fails where a C compiler should have built it."""
    from keras_axial.evaluation import coco_panoptic

    module = coco_panoptic._pair_counts
    if module is None:
        if shutil.which("cc") or shutil.which("gcc"):
            pytest.fail("A C compiler exists here, so `pip install` must have built _pair_counts.")
        pytest.skip("No C compiler here: setup.py leaves the optional C counter out.")
    return module

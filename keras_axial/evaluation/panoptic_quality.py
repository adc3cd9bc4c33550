"""Panoptic quality (PQ, SQ, RQ) with COCO panopticapi semantics, vectorised with NumPy.

One implementation of the per-image statistics serves both the streaming metric on label maps
(`PanopticQuality`) and the folder evaluator on COCO panoptic files
(`keras_axial.evaluation.coco_panoptic`): each turns an image into two maps of dense segment
indices (index 0 = void) plus a class per segment, and `image_statistics` does the rest from the
segment-pair intersection matrix, no Python loop over pixels or segment pairs. The matrix comes
from one pass of the optional C counter (`_pair_counts.c`, built by `pip install` where a C
compiler exists) or, without it, from numpy gathers and one `np.bincount` over the pixels.

Reference: Kirillov et al., "Panoptic Segmentation", CVPR 2019; COCO panopticapi `pq_compute`.
"""

import numpy as np

try:  # The C pair counter (setup.py builds it where a compiler exists); numpy otherwise.
    from keras_axial.evaluation import _pair_counts
except ImportError:
    _pair_counts = None

# Label maps whose largest value is below this are relabelled with a bincount and a lookup table
# (O(pixels + max value)); larger values fall back to np.unique and searchsorted (sorts).
_LOOKUP_TABLE_LIMIT = 1 << 25


class PanopticStatistics:
    """Per-class sums behind PQ: IoU of the matches, true / false positives, false negatives.

    Args:
        num_classes: length of the per-class arrays.

    Attributes:
        iou_sum: float64 `[num_classes]`, summed IoU of the matched segment pairs.
        true_positives, false_positives, false_negatives: int64 `[num_classes]` counts.
    """

    def __init__(self, num_classes):
        self.iou_sum = np.zeros(num_classes, np.float64)
        self.true_positives = np.zeros(num_classes, np.int64)
        self.false_positives = np.zeros(num_classes, np.int64)
        self.false_negatives = np.zeros(num_classes, np.int64)

    @property
    def num_classes(self):
        return len(self.iou_sum)

    def __iadd__(self, other):
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"Cannot add panoptic statistics over {other.num_classes} classes to statistics "
                f"over {self.num_classes} classes."
            )
        self.iou_sum += other.iou_sum
        self.true_positives += other.true_positives
        self.false_positives += other.false_positives
        self.false_negatives += other.false_negatives
        return self

    def summarize(self, class_keys, is_thing, evaluated=None):
        """PQ / SQ / RQ for all classes, things, stuff and per class.

        A class that has no segment in the ground truth (crowd aside) nor in the predictions
        (TP + FP + FN = 0) is left out of the averages and `n`, and reports zeros per class,
        as in panopticapi. A group without any such class reports zeros and `n = 0`.

        Args:
            class_keys: the key each class gets in `"per_class"` (e.g. contiguous ids or COCO
                category ids), one per class.
            is_thing: bool per class.
            evaluated: optional bool per class; classes marked False (e.g. an ignore label that
                is also a class index) appear nowhere in the result. Defaults to all True.

        Returns:
            `{"All": {"pq", "sq", "rq", "n"}, "Things": {...}, "Stuff": {...},
            "per_class": {key: {"pq", "sq", "rq"}}}`, values as fractions (Python floats).
        """
        is_thing = np.asarray(is_thing, bool)
        evaluated = np.ones(self.num_classes, bool) if evaluated is None else np.asarray(evaluated)
        tp = self.true_positives.astype(np.float64)
        denominator = tp + 0.5 * self.false_positives + 0.5 * self.false_negatives
        present = (denominator > 0) & evaluated
        safe = np.where(present, denominator, 1.0)
        pq = np.where(present, self.iou_sum / safe, 0.0)
        sq = np.where(self.true_positives > 0, self.iou_sum / np.maximum(tp, 1.0), 0.0)
        rq = np.where(present, tp / safe, 0.0)

        def group(mask):
            mask = mask & present
            n = int(mask.sum())
            if n == 0:
                return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}
            return {
                "pq": float(pq[mask].sum() / n),
                "sq": float(sq[mask].sum() / n),
                "rq": float(rq[mask].sum() / n),
                "n": n,
            }

        per_class = {
            key: {"pq": float(pq[c]), "sq": float(sq[c]), "rq": float(rq[c])}
            for c, key in enumerate(class_keys)
            if evaluated[c]
        }
        return {
            "All": group(np.ones(self.num_classes, bool)),
            "Things": group(is_thing),
            "Stuff": group(~is_thing),
            "per_class": per_class,
        }


def intersection_matrix(gt_part, pred_part, num_gt, num_pred, out=None):
    """Pixel counts of every (ground-truth segment, predicted segment) pair.

    Args:
        gt_part: int array, `gt_index * num_pred` per pixel (a pre-multiplied dense
            ground-truth segment index in `[0, num_gt)`; the lookup tables produce it directly,
            which saves a pass over the pixels).
        pred_part: int array of the same shape, dense predicted index in `[0, num_pred)`.
        num_gt, num_pred: number of indices on each side.
        out: optional int64 buffer of the pixel count for the summed indices (int64 inputs and
            buffer spare np.bincount a conversion copy).

    Returns:
        int64 `[num_gt, num_pred]` intersection matrix.
    """
    pairs = np.add(gt_part.reshape(-1), pred_part.reshape(-1), out=out)
    return np.bincount(pairs, minlength=num_gt * num_pred).reshape(num_gt, num_pred)


def image_statistics(
    intersections, gt_class, gt_is_crowd, pred_class, num_classes, gt_crowd_region=None
):
    """PQ statistics of one image from its segment intersection matrix.

    Row / column 0 of `intersections` is void (ground-truth void pixels / unlabelled predicted
    pixels); rows 1.. are ground-truth segments, columns 1.. predicted segments. Semantics are
    COCO panopticapi's:

    - a ground-truth and a predicted segment of the same class match when IoU > 0.5, where the
      union leaves out the predicted pixels on ground-truth void (matches are then unique);
    - crowd ground-truth segments are never matched and never false negatives;
    - an unmatched predicted segment is a false positive unless more than half of it lies on
      ground-truth void plus the crowd region of its own class.

    Args:
        intersections: int `[1 + num_gt_segments, 1 + num_pred_segments]`.
        gt_class: int per row (entry 0, void, is ignored): contiguous class of each segment.
        gt_is_crowd: bool per row: crowd segments (excluded from matching and false negatives).
        pred_class: int per column (entry 0 ignored).
        num_classes: size of the returned per-class arrays.
        gt_crowd_region: optional bool per row: the crowd segments whose pixels excuse
            same-class false positives. Defaults to `gt_is_crowd`. (panopticapi only counts the
            last listed crowd segment of each category; the COCO folder evaluator passes that
            to reproduce it exactly.)

    Returns:
        A `PanopticStatistics`.
    """
    stats = PanopticStatistics(num_classes)
    gt_area = intersections.sum(axis=1)[1:]
    pred_area = intersections.sum(axis=0)[1:]
    on_void = intersections[0, 1:]
    overlap = intersections[1:, 1:]
    gt_class = np.asarray(gt_class)[1:]
    pred_class = np.asarray(pred_class)[1:]
    crowd = np.asarray(gt_is_crowd, bool)[1:]
    crowd_region = crowd if gt_crowd_region is None else np.asarray(gt_crowd_region, bool)[1:]
    if gt_class.size == 0 and pred_class.size == 0:
        return stats

    same_class = gt_class[:, None] == pred_class[None, :]
    union = gt_area[:, None] + pred_area[None, :] - overlap - on_void[None, :]
    iou = overlap / np.maximum(union, 1)
    matched = same_class & ~crowd[:, None] & (iou > 0.5)
    gt_matched_rows, pred_matched_columns = np.nonzero(matched)
    matched_class = gt_class[gt_matched_rows]
    stats.true_positives += np.bincount(matched_class, minlength=num_classes)
    stats.iou_sum += np.bincount(
        matched_class, weights=iou[gt_matched_rows, pred_matched_columns], minlength=num_classes
    )

    gt_unmatched = np.ones(gt_class.size, bool)
    gt_unmatched[gt_matched_rows] = False
    stats.false_negatives += np.bincount(gt_class[gt_unmatched & ~crowd], minlength=num_classes)

    pred_unmatched = np.ones(pred_class.size, bool)
    pred_unmatched[pred_matched_columns] = False
    ignored = on_void + (overlap * (same_class & crowd_region[:, None])).sum(axis=0)
    # panopticapi: `ignored / area > 0.5` excuses the segment; compared the same way (float64).
    excused = ignored / np.maximum(pred_area, 1) > 0.5
    stats.false_positives += np.bincount(
        pred_class[pred_unmatched & ~excused], minlength=num_classes
    )
    return stats


def _negative_value_error(name, value):
    return ValueError(f"The {name} has negative value {value}; expected values >= 0.")


def present_values(values, name="label map"):
    """The sorted distinct values of a non-negative int array.

    Args:
        values: non-negative int array.
        name: what `values` is, for error messages.

    Returns:
        int64 1-D array.
    """
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"The {name} must hold integers. Received dtype {values.dtype}.")
    flat = values.reshape(-1)
    if flat.size == 0:
        return np.zeros(0, np.int64)
    low, high = int(flat.min()), int(flat.max())
    if low < 0:
        raise _negative_value_error(name, low)
    if high < _LOOKUP_TABLE_LIMIT:
        return np.flatnonzero(np.bincount(flat)).astype(np.int64)
    return np.unique(flat).astype(np.int64)


def gather(values, present, mapped, out=None):
    """Replaces each element of `values` by `mapped[k]` where `present[k]` is its value.

    Args:
        values: int array whose values all appear in `present`.
        present: sorted int64 values (from `present_values`).
        mapped: int per present value.
        out: optional int64 buffer with one element per value. Defaults to `None`.

    Returns:
        int64 array of `values.shape`.
    """
    mapped = np.asarray(mapped, np.int64)
    if present.size and present[-1] < _LOOKUP_TABLE_LIMIT:
        lookup = np.zeros(int(present[-1]) + 1, np.int64)
        lookup[present] = mapped
        # mode="clip" (values are in range): with `out`, the default mode buffers the result.
        result = np.take(lookup, values.reshape(-1), out=out, mode="clip")
    else:
        result = np.take(mapped, np.searchsorted(present, values.reshape(-1)), out=out)
    return result.reshape(values.shape)


def label_convention(num_classes, thing_class_ids, label_divisor, ignore_label):
    """Validates a label convention.

    Returns:
        `(num_classes, thing_class_ids, label_divisor, ignore_label, is_thing)`: Python ints, a
        sorted tuple of thing ids, and a bool `[num_classes]` array.
    """
    for name, value, lowest in (
        ("num_classes", num_classes, 1),
        ("label_divisor", label_divisor, 1),
        ("ignore_label", ignore_label, 0),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < lowest:
            raise ValueError(f"`{name}` must be an int >= {lowest}. Received: {name}={value!r}")
    thing_class_ids = tuple(sorted(int(c) for c in thing_class_ids))
    bad = [c for c in thing_class_ids if not 0 <= c < num_classes]
    if bad:
        raise ValueError(
            f"`thing_class_ids` must lie in [0, {num_classes}). Received out of range: {bad}"
        )
    is_thing = np.zeros(int(num_classes), bool)
    is_thing[list(thing_class_ids)] = True
    return int(num_classes), thing_class_ids, int(label_divisor), int(ignore_label), is_thing


def split_panoptic_ids(values, num_classes, label_divisor, ignore_label, name="label map"):
    """Class, instance and void flag of panoptic ids; unknown classes are an error.

    Args:
        values: int array of panoptic ids.
        num_classes, label_divisor, ignore_label: the label convention.
        name: what `values` come from, for error messages.

    Returns:
        `(semantic, instance, void)` arrays of `values.shape`.
    """
    semantic = values // label_divisor
    instance = values % label_divisor
    void = semantic == ignore_label
    unknown = ~void & ((semantic < 0) | (semantic >= num_classes))
    if unknown.any():
        raise ValueError(
            f"The {name} has panoptic ids {values[unknown][:5].tolist()} whose class "
            f"(id // label_divisor = {semantic[unknown][:5].tolist()}) is not in "
            f"[0, {num_classes}) nor the ignore label {ignore_label}."
        )
    return semantic, instance, void


def panoptic_batch(y_true, y_pred):
    """Checks a ground-truth / prediction pair of `[H, W]` or `[B, H, W]` maps; returns both
    as `[B, H, W]` arrays."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim not in (2, 3):
        raise ValueError(
            "`y_true` and `y_pred` must be panoptic maps of the same shape, [H, W] or "
            f"[B, H, W]. Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    if y_true.ndim == 2:
        return y_true[None], y_pred[None]
    return y_true, y_pred


class PanopticQuality:
    """Streaming panoptic quality over label maps (update per batch, result at the end).

    Label maps follow the package convention: `panoptic = semantic * label_divisor + instance`
    with contiguous semantic ids `0 .. num_classes - 1`; pixels whose semantic id is
    `ignore_label` are void. Each distinct panoptic value is one segment.

    Crowd regions are represented as **instance 0 of a thing class in the ground truth**
    (COCO's `iscrowd=1` segments convert to exactly that): such a region is never matched nor a
    false negative, and it excuses predicted segments of the same class that lie more than half
    on void plus crowd. In predictions, instance 0 of a thing class is an ordinary segment.
    Semantics otherwise follow COCO panopticapi (see `image_statistics`); on the same data,
    results equal `panopticapi.evaluation.pq_compute`.

    Args:
        num_classes: number of contiguous semantic classes.
        thing_class_ids: contiguous ids of the thing classes.
        label_divisor: panoptic label divisor.
        ignore_label: semantic id of void pixels. Defaults to `255`. If it is also a class index
            (`< num_classes`), that class is void and left out of the results.

    Example:
        >>> metric = PanopticQuality(num_classes=3, thing_class_ids=[2], label_divisor=256)
        >>> metric.update_state(ground_truth_maps, predicted_maps)  # [B, H, W] or [H, W]
        >>> metric.result()["All"]["pq"]

    Reference: Kirillov et al., "Panoptic Segmentation", CVPR 2019.
    """

    def __init__(self, num_classes, thing_class_ids, label_divisor, ignore_label=255):
        (
            self.num_classes,
            self.thing_class_ids,
            self.label_divisor,
            self.ignore_label,
            self._is_thing,
        ) = label_convention(num_classes, thing_class_ids, label_divisor, ignore_label)
        self._evaluated = np.arange(self.num_classes) != self.ignore_label
        self.reset_state()

    def reset_state(self):
        """Forgets everything seen so far."""
        self.statistics = PanopticStatistics(self.num_classes)
        self.num_images = 0
        self._buffers = {}

    def _segments(self, values, name, is_ground_truth):
        """Dense index per present value (0 = void), class and crowd flag per index."""
        semantic, instance, void = split_panoptic_ids(
            values, self.num_classes, self.label_divisor, self.ignore_label, name
        )
        # Dense index 0 is void; segments take 1.. in sorted-id order.
        index = np.where(void, 0, np.cumsum(~void))
        segment_class = np.concatenate([[-1], semantic[~void]]).astype(np.intp)
        crowd = np.zeros(segment_class.size, bool)
        if is_ground_truth:
            crowd[1:] = self._is_thing[semantic[~void]] & (instance[~void] == 0)
        return index, segment_class, crowd

    def update_state(self, y_true, y_pred):
        """Adds a batch of images.

        Args:
            y_true: int ground-truth panoptic maps, `[H, W]` or `[B, H, W]` (numpy or anything
                `np.asarray` accepts).
            y_pred: int predicted panoptic maps, same shape.
        """
        for gt_map, pred_map in zip(*panoptic_batch(y_true, y_pred)):
            for label_map in (gt_map, pred_map):
                if not np.issubdtype(label_map.dtype, np.integer):
                    raise TypeError(
                        f"Label maps must hold integers. Received dtype {label_map.dtype}."
                    )
            if _pair_counts is not None:
                intersections, gt_class, gt_crowd, pred_class = self._counted(gt_map, pred_map)
            else:
                intersections, gt_class, gt_crowd, pred_class = self._gathered(gt_map, pred_map)
            self.statistics += image_statistics(
                intersections, gt_class, gt_crowd, pred_class, self.num_classes
            )
            self.num_images += 1

    def _counted(self, gt_map, pred_map):
        """Intersection matrix and segment tables from the distinct (gt, pred) value pairs that
        the C counter finds in one pass."""
        maps = []
        for label_map in (gt_map, pred_map):
            if label_map.dtype not in (np.int32, np.int64):
                label_map = label_map.astype(np.int64)  # (unsigned and narrow ints)
            maps.append(np.ascontiguousarray(label_map))
        *pairs, minimum = _pair_counts.count_value_pairs(*maps)
        gt_pairs, pred_pairs, counts = (np.frombuffer(b, np.int64) for b in pairs)
        if minimum < 0:
            name = "ground-truth map" if gt_map.min() < 0 else "predicted map"
            raise _negative_value_error(name, minimum)
        sides = []
        for pair_values, name, is_ground_truth in (
            (gt_pairs, "ground-truth map", True), (pred_pairs, "predicted map", False)
        ):
            values, inverse = np.unique(pair_values, return_inverse=True)
            index, segment_class, crowd = self._segments(values, name, is_ground_truth)
            sides.append((index[inverse], segment_class, crowd))
        (gt_rows, gt_class, gt_crowd), (pred_columns, pred_class, _) = sides
        intersections = np.zeros((gt_class.size, pred_class.size), np.int64)
        np.add.at(intersections, (gt_rows, pred_columns), counts)
        return intersections, gt_class, gt_crowd, pred_class

    def _gathered(self, gt_map, pred_map):
        """Intersection matrix and segment tables by numpy passes over the pixels."""
        # Images go through reused int64 buffers: fresh multi-megabyte arrays per image cost
        # page faults comparable to the work, and int64 spares bincount a conversion.
        gt_map = self._copy_to_buffer("gt", gt_map)
        pred_map = self._copy_to_buffer("pred", pred_map)
        gt_values = present_values(gt_map, "ground-truth map")
        pred_values = present_values(pred_map, "predicted map")
        gt_index, gt_class, gt_crowd = self._segments(gt_values, "ground-truth map", True)
        pred_index, pred_class, _ = self._segments(pred_values, "predicted map", False)
        intersections = intersection_matrix(
            gather(gt_map, gt_values, gt_index * pred_class.size, self._buffer("gt_part")),
            gather(pred_map, pred_values, pred_index, self._buffer("pred_part")),
            gt_class.size,
            pred_class.size,
            out=self._buffer("pairs"),
        )
        return intersections, gt_class, gt_crowd, pred_class

    def _buffer(self, name, size=None):
        size = self._buffer_size if size is None else size
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size != size:
            buffer = self._buffers[name] = np.empty(size, np.int64)
        return buffer

    def _copy_to_buffer(self, name, label_map):
        self._buffer_size = label_map.size
        buffer = self._buffer(name)
        np.copyto(buffer.reshape(label_map.shape), label_map, casting="unsafe")
        return buffer.reshape(label_map.shape)

    def merge_state(self, other):
        """Adds the statistics of another `PanopticQuality` (e.g. from another worker)."""
        if not isinstance(other, PanopticQuality) or other.get_config() != self.get_config():
            raise ValueError(
                "merge_state expects a PanopticQuality with the same configuration. "
                f"Received: {other!r}"
            )
        self.statistics += other.statistics
        self.num_images += other.num_images

    def result(self):
        """PQ / SQ / RQ as fractions.

        Returns:
            `{"All": {"pq", "sq", "rq", "n"}, "Things": {...}, "Stuff": {...},
            "per_class": {class_id: {"pq", "sq", "rq"}}}` with contiguous class ids as keys.
        """
        return self.statistics.summarize(
            range(self.num_classes), self._is_thing, evaluated=self._evaluated
        )

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "thing_class_ids": list(self.thing_class_ids),
            "label_divisor": self.label_divisor,
            "ignore_label": self.ignore_label,
        }

    @classmethod
    def from_dataset(cls, dataset):
        """Builds the metric from a dataset description (`class_names` or `num_classes`,
        `thing_class_ids`, `label_divisor`, `ignore_label`), e.g. a `DatasetSpec`."""
        from keras_axial.visualization.dataset_description import dataset_info

        info = dataset_info(dataset)
        return cls(info.num_classes, info.thing_class_ids, info.label_divisor, info.ignore_label)

    def __repr__(self):
        return f"PanopticQuality({self.get_config()}, num_images={self.num_images})"

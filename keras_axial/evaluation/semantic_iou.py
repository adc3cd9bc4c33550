"""Streaming semantic mean IoU (confusion matrix) over NumPy label maps."""

import numpy as np


class SemanticMeanIoU:
    """Mean intersection-over-union of semantic label maps, accumulated over batches.

    Ground-truth pixels labelled `ignore_label` are left out. A predicted pixel with the ignore
    label (or, with `label_divisor`, a void panoptic id) on a labelled ground-truth pixel counts
    as a miss of the ground-truth class. Classes absent from both the ground truth and the
    predictions are left out of the mean (their IoU is NaN).

    Args:
        num_classes: number of contiguous classes.
        ignore_label: label of void pixels. Defaults to `255`. If it is also a class index
            (`< num_classes`), that class is void and left out.
        label_divisor: if set, inputs are panoptic maps and the semantic class is
            `panoptic // label_divisor`. Defaults to `None` (inputs are semantic maps).

    Example:
        >>> metric = SemanticMeanIoU(num_classes=19)
        >>> metric.update_state(ground_truth, prediction)  # [H, W] or [B, H, W]
        >>> metric.result()["miou"]
    """

    def __init__(self, num_classes, ignore_label=255, label_divisor=None):
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive int. Received: {num_classes!r}")
        if label_divisor is not None and (
            not isinstance(label_divisor, (int, np.integer)) or label_divisor < 1
        ):
            raise ValueError(
                f"`label_divisor` must be a positive int or None. Received: {label_divisor!r}"
            )
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.label_divisor = None if label_divisor is None else int(label_divisor)
        self._evaluated = np.arange(self.num_classes) != self.ignore_label
        self.reset_state()

    def reset_state(self):
        """Forgets everything seen so far."""
        # Column num_classes counts ignore-label predictions on labelled pixels.
        self.confusion_matrix = np.zeros((self.num_classes, self.num_classes + 1), np.int64)

    def _semantic(self, labels, name):
        labels = np.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"`{name}` must hold integer labels. Received dtype {labels.dtype}.")
        if self.label_divisor is not None:
            labels = labels // self.label_divisor
        valid = (labels >= 0) & (labels < self.num_classes)
        bad = ~valid & (labels != self.ignore_label)
        if bad.any():
            raise ValueError(
                f"`{name}` has classes {np.unique(labels[bad])[:5].tolist()} outside "
                f"[0, {self.num_classes}) that are not the ignore label {self.ignore_label}."
            )
        return labels

    def update_state(self, y_true, y_pred):
        """Adds a batch.

        Args:
            y_true: int ground-truth maps, any shape (e.g. `[B, H, W]`).
            y_pred: int predicted maps of the same shape.
        """
        y_true = self._semantic(y_true, "y_true")
        y_pred = self._semantic(y_pred, "y_pred")
        if y_true.shape != y_pred.shape:
            raise ValueError(
                "`y_true` and `y_pred` must have the same shape. "
                f"Received: {y_true.shape} and {y_pred.shape}"
            )
        labelled = (y_true != self.ignore_label) & (y_true < self.num_classes)
        truth = y_true[labelled].astype(np.int64)
        predicted = y_pred[labelled].astype(np.int64)
        predicted[(predicted == self.ignore_label) | (predicted >= self.num_classes)] = (
            self.num_classes
        )
        width = self.num_classes + 1
        self.confusion_matrix += np.bincount(
            truth * width + predicted, minlength=self.num_classes * width
        ).reshape(self.num_classes, width)

    def merge_state(self, other):
        """Adds the confusion matrix of another `SemanticMeanIoU` with the same classes."""
        if not isinstance(other, SemanticMeanIoU) or other.get_config() != self.get_config():
            raise ValueError(
                f"merge_state expects a SemanticMeanIoU with the same configuration. Received: {other!r}"
            )
        self.confusion_matrix += other.confusion_matrix

    def result(self):
        """The mean IoU and more.

        Returns:
            `{"miou", "pixel_accuracy", "per_class_iou": {class_id: iou or nan}, "n"}` with
            fractions; `n` counts the classes in the mean.
        """
        matrix = self.confusion_matrix[:, : self.num_classes]
        true_positives = np.diag(matrix).astype(np.float64)
        ground_truth = self.confusion_matrix.sum(axis=1)
        predicted = matrix.sum(axis=0)
        union = ground_truth + predicted - true_positives
        present = (union > 0) & self._evaluated
        iou = np.where(present, true_positives / np.maximum(union, 1), np.nan)
        labelled = ground_truth[self._evaluated].sum()
        return {
            "miou": float(iou[present].mean()) if present.any() else 0.0,
            "pixel_accuracy": (
                float(true_positives[self._evaluated].sum() / labelled) if labelled else 0.0
            ),
            "per_class_iou": {
                c: float(iou[c]) for c in range(self.num_classes) if self._evaluated[c]
            },
            "n": int(present.sum()),
        }

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
            "label_divisor": self.label_divisor,
        }

    def __repr__(self):
        return f"SemanticMeanIoU({self.get_config()})"

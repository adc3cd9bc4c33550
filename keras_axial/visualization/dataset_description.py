"""Reads a dataset description duck-typed, so visualization and evaluation need no import of
`keras_axial.data` (which may itself use them: importing it here would make a cycle).

Evaluation imports this module too; visualization never imports evaluation."""

import collections

import numpy as np

DatasetInfo = collections.namedtuple(
    "DatasetInfo",
    [
        "num_classes",
        "class_names",
        "thing_class_ids",
        "label_divisor",
        "ignore_label",
        "colors",
        "category_ids",
    ],
)
DatasetInfo.__doc__ = """What evaluation and visualization need to know about a dataset.

`colors` is a uint8 `[num_classes, 3]` array or None; `category_ids` a tuple of the dataset's
category id per contiguous class, or None (contiguous ids are the category ids)."""


def dataset_info(dataset):
    """Normalises a dataset description.

    Args:
        dataset: any object with the attributes `class_names`, `thing_class_ids`,
            `label_divisor`, `ignore_label` and optionally `colors` and `category_ids` (e.g.
            `keras_axial.data.DatasetSpec`); a dict with those keys; or the name of a registered
            dataset spec (`"coco"`, `"cityscapes"`, ...), resolved through `keras_axial.data`.

    Returns:
        A `DatasetInfo`.
    """
    if isinstance(dataset, DatasetInfo):
        return dataset
    if isinstance(dataset, str):
        # Imported here, not at module level: only a name lookup needs the registry.
        from keras_axial.data import get_dataset_spec

        dataset = get_dataset_spec(dataset)

    def get(key, default=KeyError):
        if isinstance(dataset, dict):
            value = dataset.get(key, default)
        else:
            value = getattr(dataset, key, default)
        if value is KeyError:
            raise TypeError(
                f"The dataset description lacks `{key}`. Expected an object (e.g. "
                "keras_axial.data.DatasetSpec) or dict with `class_names`, `thing_class_ids`, "
                f"`label_divisor`, `ignore_label` and optional `colors`. Received: {dataset!r:.200}"
            )
        return value

    class_names = tuple(str(name) for name in get("class_names"))
    num_classes = len(class_names)
    thing_class_ids = tuple(sorted(int(c) for c in get("thing_class_ids")))
    bad = [c for c in thing_class_ids if not 0 <= c < num_classes]
    if bad:
        raise ValueError(
            f"The dataset's thing_class_ids must lie in [0, {num_classes}). Received: {bad}"
        )
    label_divisor = int(get("label_divisor"))
    ignore_label = int(get("ignore_label"))
    colors = get("colors", None)
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != (num_classes, 3) or colors.min() < 0 or colors.max() > 255:
            raise ValueError(
                f"The dataset's colors must be {num_classes} (r, g, b) triples in 0..255. "
                f"Received an array of shape {colors.shape}."
            )
        colors = colors.astype(np.uint8)
    category_ids = get("category_ids", None)
    if category_ids is not None:
        category_ids = tuple(int(c) for c in category_ids)
        if len(category_ids) != num_classes or len(set(category_ids)) != num_classes:
            raise ValueError(
                f"The dataset's category_ids must be {num_classes} unique ids. "
                f"Received: {list(category_ids)}"
            )
    return DatasetInfo(
        num_classes, class_names, thing_class_ids, label_divisor, ignore_label, colors, category_ids
    )

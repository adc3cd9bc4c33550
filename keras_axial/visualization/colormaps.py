"""Class and instance colors.

Class colors come from the dataset description (`colors`: the `keras_axial.data` presets carry
the official palettes, COCO's `panoptic_coco_categories.json` colors and Cityscapes' `labels.py`
colors); datasets without colors get a generated palette. An instance's color is its class color
jittered by a hash of the instance id, so the same instance gets the same color in every image,
figure and written PNG.
"""

import colorsys

import numpy as np

from keras_axial.visualization.dataset_description import dataset_info

VOID_COLOR = (0, 0, 0)

# Golden-ratio hue steps spread any number of generated colors around the color wheel.
_GOLDEN_RATIO_CONJUGATE = 0.618033988749895


def generate_palette(num_colors):
    """Deterministic, well-separated colors for datasets that define none.

    Args:
        num_colors: how many colors.

    Returns:
        uint8 `[num_colors, 3]`; never black (black is void).

    Example:
        >>> generate_palette(3).shape
        (3, 3)
    """
    if num_colors < 0:
        raise ValueError(f"`num_colors` must be >= 0. Received: {num_colors}")
    colors = []
    for i in range(num_colors):
        hue = (i * _GOLDEN_RATIO_CONJUGATE) % 1.0
        # Alternate saturation / value so neighbouring hues of many classes stay apart.
        saturation = (0.85, 0.6, 0.95)[i % 3]
        value = (0.95, 0.75, 0.55)[(i // 3) % 3]
        colors.append([round(255 * c) for c in colorsys.hsv_to_rgb(hue, saturation, value)])
    return np.asarray(colors, np.uint8).reshape(num_colors, 3)


def colormap(dataset):
    """One color per contiguous class.

    Args:
        dataset: dataset description (`DatasetSpec`, any object or dict with `class_names`,
            `thing_class_ids`, `label_divisor`, `ignore_label`, optional `colors`), or the name
            of a registered dataset spec (`"coco"`, `"cityscapes"`, ...).

    Returns:
        uint8 `[num_classes, 3]`: the dataset's `colors`, or `generate_palette(num_classes)`.

    Example:
        >>> colormap("cityscapes")[0]  # road
        array([128,  64, 128], dtype=uint8)
    """
    info = dataset_info(dataset)
    if info.colors is not None:
        return info.colors.copy()
    return generate_palette(info.num_classes)


def _mix(values):
    # splitmix64 finaliser: a cheap integer hash whose low bits are well mixed.
    values = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        values = values ^ (values >> np.uint64(31))
    return values


def instance_colors(class_colors, instance_ids, max_jitter=48, salt=0):
    """The class colors jittered by a hash of the instance ids (vectorised).

    Args:
        class_colors: uint8 `[N, 3]` (or `[3]`) class colors.
        instance_ids: int `[N]` (or scalar) instance ids (any ints, e.g. panoptic ids).
        max_jitter: largest per-channel change. Defaults to `48`.
        salt: changes every color; used to pick another color on a collision. Defaults to `0`.

    Returns:
        uint8 array of the shape of `class_colors`.

    Example:
        >>> instance_colors(np.array([220, 20, 60], np.uint8), 3)  # person #3, always the same
    """
    class_colors = np.asarray(class_colors, np.int64)
    ids = np.asarray(instance_ids, np.int64)
    hashed = _mix(_mix(ids + np.int64(salt) * np.int64(0x9E3779B9)) + np.uint64(0x632BE5AB))
    shifts = np.stack(
        [(hashed >> np.uint64(16 * k)) & np.uint64(0xFFFF) for k in range(3)], axis=-1
    ).astype(np.int64)
    offsets = shifts % (2 * max_jitter + 1) - max_jitter
    return np.clip(class_colors + offsets, 0, 255).astype(np.uint8)


def panoptic_colors(panoptic_ids, dataset, class_colors=None):
    """The display color of each panoptic id: class color for stuff and crowd, jittered class
    color for thing instances, `VOID_COLOR` for void.

    Args:
        panoptic_ids: int array of panoptic ids (`class * label_divisor + instance`).
        dataset: dataset description (see `colormap`).
        class_colors: optional uint8 `[num_classes, 3]`; defaults to `colormap(dataset)`.

    Returns:
        uint8 array of shape `panoptic_ids.shape + (3,)`.
    """
    info = dataset_info(dataset)
    class_colors = colormap(info) if class_colors is None else np.asarray(class_colors, np.uint8)
    ids = np.asarray(panoptic_ids, np.int64)
    semantic = ids // info.label_divisor
    instance = ids % info.label_divisor
    void = semantic == info.ignore_label
    unknown = ~void & ((ids < 0) | (semantic >= info.num_classes))
    if unknown.any():
        raise ValueError(
            f"Panoptic ids {np.unique(ids[unknown])[:5].tolist()} have a class (id // "
            f"label_divisor, label_divisor={info.label_divisor}) outside [0, "
            f"{info.num_classes}) that is not the ignore label {info.ignore_label}."
        )
    safe_semantic = np.where(void, 0, semantic)
    base = class_colors[safe_semantic]
    is_thing = np.zeros(info.num_classes, bool)
    is_thing[list(info.thing_class_ids)] = True
    jittered = is_thing[safe_semantic] & (instance > 0)
    colors = np.where(jittered[..., None], instance_colors(base, ids), base)
    colors[void] = VOID_COLOR
    return colors.astype(np.uint8)

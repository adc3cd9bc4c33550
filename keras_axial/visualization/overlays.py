"""Colored label maps and overlays on the image, as uint8 arrays."""

import numpy as np

from keras_axial.visualization.colormaps import VOID_COLOR
from keras_axial.visualization.colormaps import colormap
from keras_axial.visualization.colormaps import panoptic_colors
from keras_axial.visualization.dataset_description import dataset_info

LABEL_TYPES = ("panoptic", "semantic")


def _label_map(label_map, name):
    label_map = np.asarray(label_map)
    if label_map.ndim != 2 or not np.issubdtype(label_map.dtype, np.integer):
        raise ValueError(
            f"`{name}` must be an int [height, width] label map. "
            f"Received dtype {label_map.dtype}, shape {label_map.shape}."
        )
    return label_map


def colorize_semantic(semantic, dataset):
    """Colors a semantic label map with the class colors (void in `VOID_COLOR`).

    Args:
        semantic: int `[H, W]` contiguous class ids (`ignore_label` for void).
        dataset: dataset description (`DatasetSpec`, object / dict with `class_names`,
            `thing_class_ids`, `label_divisor`, `ignore_label`, optional `colors`) or a
            registered dataset name.

    Returns:
        uint8 `[H, W, 3]`.

    Example:
        >>> colorize_semantic(semantic, "cityscapes").shape
        (1025, 2049, 3)
    """
    info = dataset_info(dataset)
    semantic = _label_map(semantic, "semantic")
    void = semantic == info.ignore_label
    unknown = ~void & ((semantic < 0) | (semantic >= info.num_classes))
    if unknown.any():
        raise ValueError(
            f"The semantic map has classes {np.unique(semantic[unknown])[:5].tolist()} outside "
            f"[0, {info.num_classes}) that are not the ignore label {info.ignore_label}."
        )
    colors = colormap(info)[np.where(void, 0, semantic)]
    colors[void] = VOID_COLOR
    return colors


def segment_boundaries(label_map):
    """Pixels whose right or lower neighbour belongs to another segment.

    Args:
        label_map: int `[H, W]` (semantic or panoptic).

    Returns:
        bool `[H, W]`.
    """
    label_map = _label_map(label_map, "label_map")
    edges = np.zeros(label_map.shape, bool)
    edges[:, :-1] |= label_map[:, :-1] != label_map[:, 1:]
    edges[:-1, :] |= label_map[:-1, :] != label_map[1:, :]
    return edges


def colorize_panoptic(panoptic, dataset, boundaries=False, boundary_color=(255, 255, 255)):
    """Colors a panoptic label map: class color for stuff and crowd regions, a deterministic
    per-instance variation of it for thing instances, `VOID_COLOR` for void.

    Args:
        panoptic: int `[H, W]` panoptic ids (`class * label_divisor + instance`).
        dataset: dataset description (see `colorize_semantic`).
        boundaries: draw segment boundaries. Defaults to `False`.
        boundary_color: their color. Defaults to white.

    Returns:
        uint8 `[H, W, 3]`.
    """
    panoptic = _label_map(panoptic, "panoptic")
    # Color the distinct ids once, then gather: cheap even for large maps.
    ids, index = np.unique(panoptic, return_inverse=True)
    colors = panoptic_colors(ids, dataset)[index.reshape(panoptic.shape)]
    if boundaries:
        colors[segment_boundaries(panoptic)] = boundary_color
    return colors


def _image(image):
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(
            f"`image` must be [H, W, 3] (or [H, W] / [H, W, 4]). Received shape {image.shape}."
        )
    image = image[..., :3]
    if image.dtype != np.uint8:
        # The package's models take float pixels in [0, 255].
        image = np.clip(np.rint(image.astype(np.float64)), 0, 255).astype(np.uint8)
    return image


def overlay(image, label_map, dataset, label_type="panoptic", alpha=0.6, boundaries=True):
    """Blends the colored label map onto the image (void pixels show the image).

    Args:
        image: `[H, W, 3]` uint8, or float pixels in [0, 255].
        label_map: int `[H, W]` panoptic or semantic map.
        dataset: dataset description (see `colorize_semantic`).
        label_type: `"panoptic"` (default) or `"semantic"`.
        alpha: opacity of the colors, in [0, 1]. Defaults to `0.6`.
        boundaries: draw segment boundaries in white. Defaults to `True`.

    Returns:
        uint8 `[H, W, 3]`.

    Example:
        >>> save_png("overlay.png", overlay(image, prediction["panoptic"][0], "coco"))
    """
    if label_type not in LABEL_TYPES:
        raise ValueError(f"`label_type` must be one of {LABEL_TYPES}. Received: {label_type!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must lie in [0, 1]. Received: alpha={alpha}")
    image = _image(image)
    label_map = _label_map(label_map, "label_map")
    if label_map.shape != image.shape[:2]:
        raise ValueError(
            f"The label map {label_map.shape} and the image {image.shape[:2]} must have the "
            "same height and width."
        )
    info = dataset_info(dataset)
    if label_type == "panoptic":
        colors = colorize_panoptic(label_map, info)
        void = label_map // info.label_divisor == info.ignore_label
    else:
        colors = colorize_semantic(label_map, info)
        void = label_map == info.ignore_label
    weight = np.where(void, 0.0, alpha)[..., None]
    blended = image * (1.0 - weight) + colors * weight
    result = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    if boundaries:
        result[segment_boundaries(label_map)] = 255
    return result

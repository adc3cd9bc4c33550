"""Visualization: class / instance colors, colored label maps, overlays, figures, PNG writing.

NumPy + matplotlib (Agg backend, no display). Functions take label maps and a dataset
description: `keras_axial.data.DatasetSpec`, any object or dict with `class_names`,
`thing_class_ids`, `label_divisor`, `ignore_label` and optional `colors`, or a registered
dataset name. Images come back as uint8 `[H, W, 3]` arrays.
"""

import importlib

_LAZY = {
    "dataset_info": "dataset_description",
    "DatasetInfo": "dataset_description",
    "colormap": "colormaps",
    "generate_palette": "colormaps",
    "instance_colors": "colormaps",
    "panoptic_colors": "colormaps",
    "VOID_COLOR": "colormaps",
    "colorize_semantic": "overlays",
    "colorize_panoptic": "overlays",
    "segment_boundaries": "overlays",
    "overlay": "overlays",
    "side_by_side_figure": "figures",
    "figure_to_array": "figures",
    "save_png": "figures",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"keras_axial.visualization.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'keras_axial.visualization' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

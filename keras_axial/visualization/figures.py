"""Side-by-side figures (image | ground truth | prediction) with a legend, and PNG writing.

Figures are built with `matplotlib.figure.Figure` on the Agg canvas: no pyplot, no display, no
global backend change.
"""

import io
import os

import numpy as np

from keras_axial.visualization.colormaps import colormap
from keras_axial.visualization.dataset_description import dataset_info
from keras_axial.visualization.overlays import LABEL_TYPES
from keras_axial.visualization.overlays import _image
from keras_axial.visualization.overlays import _label_map
from keras_axial.visualization.overlays import overlay


def _classes_present(label_map, info, label_type):
    classes = np.unique(label_map)
    if label_type == "panoptic":
        classes = np.unique(classes // info.label_divisor)
    return {int(c) for c in classes if c != info.ignore_label and 0 <= c < info.num_classes}


def side_by_side_figure(
    image,
    ground_truth,
    prediction,
    dataset,
    label_type="panoptic",
    titles=("Image", "Ground truth", "Prediction"),
    alpha=0.6,
    legend=True,
    panel_width=4.0,
    dpi=100,
):
    """A figure image | ground truth | prediction, with a legend of the classes present.

    Ground truth and prediction are drawn as overlays on the image (thing instances in
    per-instance shades of their class color, segment boundaries in white, void transparent).

    Args:
        image: `[H, W, 3]` uint8, or float pixels in [0, 255].
        ground_truth: int `[H, W]` label map, or `None` to leave the panel out.
        prediction: int `[H, W]` label map, or `None` to leave the panel out.
        dataset: dataset description (`DatasetSpec`, object / dict with `class_names`,
            `thing_class_ids`, `label_divisor`, `ignore_label`, optional `colors`) or a
            registered dataset name.
        label_type: `"panoptic"` (default) or `"semantic"`.
        titles: panel titles. Defaults to `("Image", "Ground truth", "Prediction")`.
        alpha: opacity of the label colors. Defaults to `0.6`.
        legend: add a legend of the classes in the ground truth or the prediction. Defaults to
            `True`.
        panel_width: width of one panel in inches. Defaults to `4.0`.
        dpi: figure resolution. Defaults to `100`.

    Returns:
        A `matplotlib.figure.Figure` (Agg canvas): `save_png(path, figure)` or
        `figure_to_array(figure)`.

    Example:
        >>> figure = side_by_side_figure(image, targets["panoptic"][0], outputs["panoptic"][0],
        ...                              "cityscapes")
        >>> save_png("sample.png", figure)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if label_type not in LABEL_TYPES:
        raise ValueError(f"`label_type` must be one of {LABEL_TYPES}. Received: {label_type!r}")
    if len(titles) != 3:
        raise ValueError(f"`titles` needs 3 entries. Received: {titles!r}")
    info = dataset_info(dataset)
    image = _image(image)
    panels = [(titles[0], image)]
    present = set()
    for title, label_map, name in (
        (titles[1], ground_truth, "ground_truth"),
        (titles[2], prediction, "prediction"),
    ):
        if label_map is None:
            continue
        label_map = _label_map(label_map, name)
        panels.append((title, overlay(image, label_map, info, label_type, alpha=alpha)))
        present |= _classes_present(label_map, info, label_type)

    height, width = image.shape[:2]
    panel_height = panel_width * height / width
    legend_rows = 0
    columns = 4
    if legend and present:
        legend_rows = -(-len(present) // columns)
    figure = Figure(
        figsize=(panel_width * len(panels), panel_height + 0.4 + 0.25 * legend_rows), dpi=dpi
    )
    FigureCanvasAgg(figure)
    bottom = (0.25 * legend_rows + 0.1) / figure.get_figheight() if legend_rows else 0.02
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    figure.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=bottom, wspace=0.02)
    for ax, (title, panel) in zip(axes, panels):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    if legend_rows:
        colors = colormap(info) / 255.0
        handles = [
            Patch(facecolor=colors[c], edgecolor="black", linewidth=0.5, label=info.class_names[c])
            for c in sorted(present)
        ]
        figure.legend(
            handles=handles, loc="lower center", ncol=min(columns, len(handles)), fontsize=8,
            frameon=False,
        )
    return figure


def figure_to_array(figure):
    """Renders a matplotlib figure to a uint8 `[H, W, 3]` array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else None
    if canvas is None:
        canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(path, array_or_figure):
    """Writes a uint8 image array or a matplotlib figure to a PNG, atomically.

    Args:
        path: destination `.png`; its folder must exist.
        array_or_figure: uint8 `[H, W]`, `[H, W, 3]` or `[H, W, 4]` array, or a
            `matplotlib.figure.Figure`.

    Example:
        >>> save_png("overlay.png", overlay(image, panoptic, "coco"))
    """
    from PIL import Image

    # Imported on use: `keras_axial.utils` loads Keras, which drawing does not otherwise need.
    from keras_axial.utils.io import atomic_write

    path = os.fspath(path)
    if hasattr(array_or_figure, "savefig"):
        buffer = io.BytesIO()
        array_or_figure.savefig(buffer, format="png", dpi=array_or_figure.dpi)
        data = buffer.getvalue()
    else:
        array = np.asarray(array_or_figure)
        if array.dtype != np.uint8 or not (
            array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))
        ):
            raise ValueError(
                "save_png expects a uint8 [H, W], [H, W, 3] or [H, W, 4] array or a matplotlib "
                f"figure. Received dtype {array.dtype}, shape {array.shape} for {path!r}."
            )
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        data = buffer.getvalue()
    with atomic_write(path, "wb") as handle:
        handle.write(data)

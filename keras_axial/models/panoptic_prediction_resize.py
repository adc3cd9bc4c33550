"""Resizing panoptic predictions with aligned corners, offsets rescaled with the resize."""

import keras
from keras import ops

from keras_axial.layers import resize_bilinear_aligned

OFFSETS_KEY = "offsets"


def resize_panoptic_predictions(predictions, size):
    """Resizes a dict of panoptic predictions to `size` (bilinear, aligned corners, float32).

    Offsets are `(dy, dx)` in pixels of the grid they were predicted on; after an aligned-corners
    resize from `(h, w)` to `(H, W)` one pixel step is `(H - 1) / (h - 1)` output pixels
    vertically and `(W - 1) / (w - 1)` horizontally, so `dy` and `dx` are multiplied by those
    ratios (a length-1 axis keeps its offsets).

    Args:
        predictions: dict of `[batch, h, w, channels]` tensors, e.g. `"semantic_logits"`,
            `"center_heatmap"`, `"offsets"` (all resized; only `"offsets"` is rescaled).
        size: `(H, W)`: Python ints or scalar integer tensors.

    Returns:
        A dict with the same keys of float32 `[batch, H, W, channels]` tensors.

    Example:
        >>> full = resize_panoptic_predictions(outputs_at_stride_4, ops.shape(images)[1:3])
    """
    resized = {}
    for key, value in predictions.items():
        value = resize_bilinear_aligned(ops.cast(value, "float32"), size)
        if key == OFFSETS_KEY:
            source = ops.shape(predictions[key])
            scale = ops.stack(
                [_step_ratio(size[0], source[1]), _step_ratio(size[1], source[2])]
            )
            value = value * scale
        resized[key] = value
    return resized


def _step_ratio(output_length, input_length):
    output_steps = ops.cast(output_length, "float32") - 1.0
    input_steps = ops.maximum(ops.cast(input_length, "float32") - 1.0, 1.0)
    return ops.where(output_steps > 0, output_steps / input_steps, 1.0)


@keras.saving.register_keras_serializable(package="keras_axial")
class PanopticPredictionResize(keras.layers.Layer):
    """Resizes panoptic predictions to the size of a reference image (see
    `resize_panoptic_predictions`): aligned-corners bilinear, offsets rescaled, float32 out.

    Args:
        **kwargs: base layer arguments.

    Call arguments:
        predictions: dict of `[batch, h, w, channels]` tensors.
        reference: `[batch, H, W, ...]` tensor whose height and width are the output size
            (the input images).

    Returns:
        A dict of float32 `[batch, H, W, channels]` tensors with the same keys.

    Example:
        >>> outputs = PanopticPredictionResize()(stride4_predictions, images)
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, predictions, reference):
        return resize_panoptic_predictions(predictions, ops.shape(reference)[1:3])

    def compute_output_spec(self, predictions, reference):
        height, width = reference.shape[1:3]
        return {
            key: keras.KerasTensor(
                (value.shape[0], height, width, value.shape[-1]), dtype="float32"
            )
            for key, value in predictions.items()
        }

    def compute_madds(self, input_shape):
        """Resizing is not counted (as in the paper's M-Adds)."""
        del input_shape
        return 0

"""Bilinear resizing with aligned corners (TF1 `align_corners=True`), in `keras.ops`."""

import keras
import numpy as np
from keras import ops

from keras_axial.layers import _common


def _is_static(value):
    return isinstance(value, (int, np.integer))


def _taps(in_length, out_length):
    """Source rows (lower, upper) and the upper row's weight for each output row."""
    if _is_static(in_length) and _is_static(out_length):
        scale = (in_length - 1) / (out_length - 1) if out_length > 1 else 0.0
        position = np.arange(out_length, dtype=np.float64) * scale
        lower = np.minimum(np.floor(position), in_length - 1).astype("int32")
        upper = np.minimum(lower + 1, in_length - 1).astype("int32")
        return lower, upper, (position - lower).astype("float32")
    in_float = ops.cast(in_length, "float32")
    out_float = ops.cast(out_length, "float32")
    scale = ops.where(out_float > 1, (in_float - 1) / ops.maximum(out_float - 1, 1), 0.0)
    position = ops.cast(ops.arange(out_length), "float32") * scale
    lower = ops.minimum(ops.floor(position), in_float - 1)
    weight = position - lower
    lower = ops.cast(lower, "int32")
    upper = ops.minimum(lower + 1, ops.cast(in_length, "int32") - 1)
    return lower, upper, weight


def _resize_axis(x, axis, in_length, out_length):
    if _is_static(in_length) and _is_static(out_length) and in_length == out_length:
        return x
    lower, upper, weight = _taps(in_length, out_length)
    shape = [1] * len(x.shape)
    shape[axis] = -1
    weight = ops.reshape(ops.cast(weight, x.dtype), shape)
    below = ops.take(x, lower, axis=axis)
    above = ops.take(x, upper, axis=axis)
    return below + (above - below) * weight


def resize_bilinear_aligned(images, size):
    """Bilinear resize of `[batch, height, width, channels]` with aligned corners.

    Output pixel `i` samples input position `i * (in - 1) / (out - 1)`, so the corner pixels of
    input and output coincide (TF1 `resize_bilinear(align_corners=True)`, what deeplab2 and
    Panoptic-DeepLab use on `16k + 1` sizes; `keras.ops.image.resize` has no such option). An
    output length of 1 samples the first pixel. Implemented as two gathers and a lerp per
    axis, so it runs with unknown (symbolic) sizes, under XLA, and converts to TFLite builtins
    (GATHER, SUB, MUL, ADD). 16-bit inputs are interpolated in float32 and cast back; integer
    inputs give float32.

    Args:
        images: tensor `[batch, height, width, channels]`.
        size: `(height, width)`: Python ints or scalar integer tensors (e.g.
            `ops.shape(reference)[1:3]`).

    Returns:
        `[batch, size[0], size[1], channels]`.

    Example:

    >>> x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    >>> resize_bilinear_aligned(x, (3, 3))[0, :, :, 0]  # [[0, .5, 1], [1, 1.5, 2], [2, 2.5, 3]]
    """
    if len(images.shape) != 4:
        raise ValueError("`images` must be [batch, height, width, channels]. "
                         f"Received: images.shape={tuple(images.shape)}")
    if isinstance(size, (list, tuple)):
        if len(size) != 2:
            raise ValueError(f"`size` must be (height, width). Received: size={size!r}")
        out_h, out_w = size
    else:
        out_h, out_w = size[0], size[1]
    for name, value in (("size[0]", out_h), ("size[1]", out_w)):
        if _is_static(value) or isinstance(value, (float, bool)):
            _common.check_int(name, value, minimum=1)
    out_h = int(out_h) if _is_static(out_h) else out_h
    out_w = int(out_w) if _is_static(out_w) else out_w
    images = ops.convert_to_tensor(images)
    dtype = keras.backend.standardize_dtype(images.dtype)
    work_dtype = "float32" if (dtype in ("float16", "bfloat16") or "int" in dtype) else dtype
    x = ops.cast(images, work_dtype)
    shape = ops.shape(x)
    in_h = images.shape[1] if images.shape[1] is not None else shape[1]
    in_w = images.shape[2] if images.shape[2] is not None else shape[2]
    x = _resize_axis(x, 1, in_h, out_h)
    x = _resize_axis(x, 2, in_w, out_w)
    if dtype in ("float16", "bfloat16"):
        x = ops.cast(x, dtype)
    return x

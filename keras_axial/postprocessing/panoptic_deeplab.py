"""Panoptic-DeepLab post-processing: semantic logits + center heatmap + offsets -> panoptic map.

Batched and shape-polymorphic (unknown batch, height and width), written with `keras.ops` only.
Shapes that depend on the settings (`keep_k_centers`, the number of classes, the chunk sizes
below) are static, so it compiles with XLA and converts to TFLite with builtin ops only.

Why the code looks the way it does (measured with XLA on 2 CPU cores, where 1 x 1025 x 2049 x 19
logits are 160 MB and one pass over them is most of the budget): the logits are read once in full,
by a class-at-a-time argmax that XLA fuses into a single pass; the work that needs the centers (the
nearest-center search) or all classes of a pixel (the softmax behind the scores, whose
exponentials are the costliest operation) runs only on thing pixels, gathered into chunks of
`PIXEL_CHUNK_SIZE` by a cumulative sum + scatter, so that temporaries stay in cache; the loops
visit only the chunks holding thing pixels and only the blocks of `CENTER_BLOCK_SIZE` centers that
were detected, so the cost follows the image content, not `keep_k_centers`. Eager execution pays
per operation (thousands of them in the loops): run it compiled (`tf.function(jit_compile=True)`,
`jax.jit`) where speed matters; `benchmarks/postprocess.py` times every mode.
"""

import math

import keras
import numpy as np
from keras import ops

# Thing pixels are gathered into regions of whole chunks of this many, one image per region.
PIXEL_CHUNK_SIZE = 65536
# The nearest-center search compares a chunk with blocks of this many centers; centers are sorted
# by score, so blocks past the last detected center of the image are never visited.
CENTER_BLOCK_SIZE = 16
# The softmax behind the scores takes chunks of logits rows holding about this many values.
_LOGITS_PER_CHUNK = 2**20

_INT32_MAX = 2**31 - 1


def _as_int(name, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int. Received: {name}={value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value}")
    return value


def validate_postprocessing_arguments(
    *,
    num_classes,
    thing_class_ids,
    label_divisor,
    void_label,
    center_threshold,
    nms_kernel,
    keep_k_centers,
    stuff_area_limit,
):
    """Checks the post-processing settings; returns them normalised (ints, a sorted tuple).

    `num_classes` may be None when it is not known yet (a config built before the model); the
    checks that need it are then skipped.
    """
    if isinstance(thing_class_ids, (str, bytes)) or not hasattr(thing_class_ids, "__iter__"):
        raise TypeError(
            "`thing_class_ids` must be a sequence of ints. "
            f"Received: thing_class_ids={thing_class_ids!r}"
        )
    thing_class_ids = list(thing_class_ids)
    for class_id in thing_class_ids:
        _as_int("thing_class_ids", class_id, minimum=0)
    thing_class_ids = tuple(sorted(int(class_id) for class_id in thing_class_ids))
    if len(set(thing_class_ids)) != len(thing_class_ids):
        raise ValueError(
            f"`thing_class_ids` has repeated ids. Received: thing_class_ids={thing_class_ids}"
        )
    label_divisor = _as_int("label_divisor", label_divisor, minimum=1)
    void_label = _as_int("void_label", void_label, minimum=0)
    if void_label in thing_class_ids:
        raise ValueError(
            f"`void_label` must not be a thing class. Received: void_label={void_label}, "
            f"thing_class_ids={thing_class_ids}"
        )
    if isinstance(center_threshold, bool) or not isinstance(
        center_threshold, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            f"`center_threshold` must be a float. Received: center_threshold={center_threshold!r}"
        )
    center_threshold = float(center_threshold)
    if not center_threshold >= 0.0:
        raise ValueError(
            f"`center_threshold` must be >= 0. Received: center_threshold={center_threshold}"
        )
    nms_kernel = _as_int("nms_kernel", nms_kernel, minimum=1)
    if nms_kernel % 2 != 1:
        raise ValueError(
            "`nms_kernel` must be odd so that the max-pool window is centred on its pixel. "
            f"Received: nms_kernel={nms_kernel}"
        )
    keep_k_centers = _as_int("keep_k_centers", keep_k_centers, minimum=1)
    if keep_k_centers >= label_divisor:
        raise ValueError(
            "`keep_k_centers` must be smaller than `label_divisor`, otherwise renumbered "
            "instance ids could reach the next class's panoptic ids. Received: "
            f"keep_k_centers={keep_k_centers}, label_divisor={label_divisor}"
        )
    stuff_area_limit = _as_int("stuff_area_limit", stuff_area_limit, minimum=0)
    if num_classes is not None:
        num_classes = _as_int("num_classes", num_classes, minimum=1)
        bad = [class_id for class_id in thing_class_ids if class_id >= num_classes]
        if bad:
            raise ValueError(
                f"`thing_class_ids` must be < num_classes={num_classes} (the last dimension of "
                f"`semantic_logits`). Received: thing_class_ids={thing_class_ids}"
            )
        largest_label = max(num_classes - 1, void_label)
        if (largest_label + 1) * label_divisor - 1 > _INT32_MAX:
            raise ValueError(
                "Panoptic ids would overflow int32: "
                f"(max(num_classes - 1, void_label) + 1) * label_divisor = "
                f"{(largest_label + 1) * label_divisor}. Received: num_classes={num_classes}, "
                f"void_label={void_label}, label_divisor={label_divisor}"
            )
    return dict(
        thing_class_ids=thing_class_ids,
        label_divisor=label_divisor,
        void_label=void_label,
        center_threshold=center_threshold,
        nms_kernel=nms_kernel,
        keep_k_centers=keep_k_centers,
        stuff_area_limit=stuff_area_limit,
    )


def _check_input(name, tensor, channels):
    shape = tuple(tensor.shape)
    if len(shape) != 4 or (channels is not None and shape[-1] != channels):
        expected = "[batch, height, width, C]" if channels is None else (
            f"[batch, height, width, {channels}]"
        )
        raise ValueError(f"`{name}` must have shape {expected}. Received: {name}.shape={shape}")


def _rows_per_chunk(num_classes):
    rows = 2 ** int(math.log2(max(1, _LOGITS_PER_CHUNK // num_classes)))
    return int(min(PIXEL_CHUNK_SIZE, max(256, rows)))


def _first_argmax(logits):
    """Index of the first maximum along the last axis (as `np.argmax`), int32.

    One class at a time: XLA fuses the loop into a single pass over the logits (a max and then
    an argmax of `logits == max` read them twice, 2-3x slower on 2 CPU cores), and eager or graph
    TensorFlow spend about what `ops.argmax` does. `ops.argmax` itself is avoided on floats: its
    negative-zero fix uses bitwise ops that TFLite lacks as builtins.
    """
    best = logits[..., 0]
    index = ops.zeros_like(ops.cast(best, "int32"))
    for class_id in range(1, logits.shape[-1]):
        value = logits[..., class_id]
        better = value > best  # strict: the smaller class id wins ties
        best = ops.where(better, value, best)
        index = ops.where(better, class_id, index)
    return index


def _is_thing(semantic, thing_class_ids, num_classes):
    """Whether each class id of `semantic` is a thing, by comparisons with the runs of
    consecutive thing ids (elementwise, fused by XLA), or a table lookup when there are many."""
    runs = []
    for class_id in thing_class_ids:
        if runs and runs[-1][1] == class_id - 1:
            runs[-1][1] = class_id
        else:
            runs.append([class_id, class_id])
    if len(runs) > 4:
        table = np.zeros((num_classes,), "bool")
        table[list(thing_class_ids)] = True
        return ops.take(ops.convert_to_tensor(table), semantic, axis=0)
    is_thing = ops.zeros_like(semantic) > 0
    for first, last in runs:
        is_thing = ops.logical_or(
            is_thing, ops.logical_and(semantic >= first, semantic <= last)
        )
    return is_thing


def _slice_axis(x, axis, start, stop):
    return x[(slice(None),) * axis + (slice(start, stop),)]


def _max_filter(x, kernel, axis):
    """Running maximum over `kernel` (odd) pixels along `axis`, centred, for `x >= 0`.

    Built from shifted maxima (windows of 1, 2, 4, ... then one overlap step), about log2(kernel)
    elementwise maxima instead of the `kernel` comparisons per pixel of a pooling kernel; the
    zero padding stands for 'same' pooling because the values are non-negative.
    """
    if kernel == 1:
        return x
    radius = (kernel - 1) // 2
    padding = [(0, 0)] * len(x.shape)
    padding[axis] = (radius, radius)
    window = ops.pad(x, padding)
    width = 1
    while 2 * width <= kernel:
        window = ops.maximum(
            _slice_axis(window, axis, 0, -width), _slice_axis(window, axis, width, None)
        )
        width *= 2
    if width == kernel:
        return window
    shift = kernel - width
    return ops.maximum(
        _slice_axis(window, axis, 0, -shift), _slice_axis(window, axis, shift, None)
    )


def _extract_centers(center_heatmap, center_threshold, nms_kernel, keep_k_centers):
    """Returns sorted center scores [B, K], flat pixel indices [B, K] and validity [B, K]."""
    heatmap = ops.where(center_heatmap > center_threshold, center_heatmap, 0.0)  # [B, H, W]
    # The k x k max-pool of the NMS, separably (exact for max): TensorFlow's 41 x 41 max-pool
    # is what makes deeplab2's COCO post-processing slow.
    pooled = _max_filter(_max_filter(heatmap, nms_kernel, 1), nms_kernel, 2)
    peaks = ops.where(ops.logical_and(heatmap == pooled, heatmap > 0.0), heatmap, 0.0)
    batch = ops.shape(peaks)[0]
    peaks = ops.reshape(peaks, (batch, -1))
    # Zero padding makes top-k valid on images with fewer than K pixels; a padded slot scores 0,
    # so it is never a center.
    peaks = ops.concatenate([peaks, ops.zeros((batch, keep_k_centers), peaks.dtype)], axis=1)
    # The true top-k, sorted by score (ties: lower pixel index first), unlike deeplab2's
    # unsorted top-k plus threshold, which can keep fewer than K centers.
    center_scores, center_indices = ops.top_k(peaks, keep_k_centers, sorted=True)
    return center_scores, ops.cast(center_indices, "int32"), center_scores > 0.0


def _nearest_center(pred_y, pred_x, center_y, center_x, num_blocks):
    """Index (0..K-1) of the nearest center of S pixels of one image, -1 when there is none.

    pred_y, pred_x: [S] predicted center positions. center_y, center_x: [num_blocks_total,
    block] centers of the image, +inf for slots without one (an infinite distance never wins).
    num_blocks: how many leading blocks hold a detected center.
    """
    block = center_y.shape[-1]

    def body(i, best_distance, best_index):
        block_y = ops.take(center_y, i, axis=0)  # [block]
        block_x = ops.take(center_x, i, axis=0)
        # One center at a time over the chunk (XLA fuses the block into one pass). Differences,
        # not the |a|^2 - 2ab + |b|^2 expansion: exact for integer positions and rounded the
        # same way by TensorFlow, XLA and TFLite, so exported maps match.
        for j in range(block):
            distance = ops.square(pred_y - block_y[j]) + ops.square(pred_x - block_x[j])
            # Strict '<': on equal distances the earlier (higher-scoring) center wins.
            better = distance < best_distance
            best_distance = ops.where(better, distance, best_distance)
            best_index = ops.where(better, i * block + j, best_index)
        return i + 1, best_distance, best_index

    _, _, best_index = ops.while_loop(
        lambda i, *_: i < num_blocks,
        body,
        (
            ops.convert_to_tensor(0, "int32"),
            ops.full_like(pred_y, np.inf),
            ops.full_like(ops.cast(pred_y, "int32"), -1),
        ),
        maximum_iterations=center_y.shape[0],
    )
    return best_index


def panoptic_deeplab_postprocess(
    semantic_logits,
    center_heatmap,
    offsets,
    *,
    thing_class_ids,
    label_divisor,
    void_label,
    center_threshold=0.1,
    nms_kernel=7,
    keep_k_centers=200,
    stuff_area_limit=4096,
):
    """Merges Panoptic-DeepLab predictions into panoptic, semantic and instance maps.

    1. Semantic prediction: argmax of the logits (ties: smaller class id).
    2. Centers: heatmap values `<= center_threshold` are zeroed; a pixel is a center if it
       equals the `nms_kernel` x `nms_kernel` max-pool of the heatmap (stride 1, 'same') and is
       positive; the `keep_k_centers` highest-scoring centers are kept, sorted by decreasing
       score (ties: row-major pixel order): exactly min(K, number of peaks) centers, the true
       top-k, not deeplab2's unsorted top-k plus a strict threshold, which can keep fewer.
    3. Grouping: every pixel whose semantic class is a thing moves by its offset `(dy, dx)` and
       joins the nearest kept center (squared Euclidean distance; ties: the higher-scoring
       center). When no center is detected, thing pixels become void (as deeplab2's pure-TF
       merge, not its C++ op, which makes them one instance).
    4. Merge: an instance takes the most frequent semantic class among its pixels (majority
       vote, ties: smaller class id) and is renumbered from 1 within its class in center-score
       order. Stuff pixels keep their class with instance 0, unless the class covers fewer than
       `stuff_area_limit` pixels of the image, in which case they become void (deeplab2's
       pure-TF '<'; its C++ op voids `<=`). Void pixels have the panoptic value
       `void_label * label_divisor`.
    5. Scores, for instance AP: score = (mean over the instance mask of the softmax probability
       of the instance's class) x (center heatmap value at its center). deeplab2 averages a map
       that paints every instance with its center's heatmap value over the mask, which is the
       same second factor.

    Everything is batched, has static shapes apart from batch, height and width (so one traced
    graph serves every image size), compiles with XLA (`jit_compile=True`, the fast way to run
    it: several times faster than graph or eager execution) and converts to TFLite with builtin
    ops only. The math runs in float32 whatever the input dtype. Call it under
    `tf.function(input_signature=[TensorSpec([None, None, None, C]), ...])` to serve any batch
    and image size with one graph.

    Args:
        semantic_logits: float `[B, H, W, C]`, semantic logits (or log-probabilities) at the
            output resolution. C must be static.
        center_heatmap: float `[B, H, W, 1]`, the raw center heatmap regression.
        offsets: float `[B, H, W, 2]`, `(dy, dx)` in pixels from each pixel to its center.
        thing_class_ids: sequence of ints, the semantic ids of thing classes (each < C).
        label_divisor: int, panoptic = semantic * label_divisor + instance. Must exceed
            `keep_k_centers`.
        void_label: int, the semantic id written for void pixels (255 for Cityscapes, 0 for
            deeplab2's COCO ids). It must not be a thing class; it may be a (stuff) class of
            the model, whose pixels then come out void.
        center_threshold: float, heatmap values at or below it are never centers. Defaults to
            0.1.
        nms_kernel: odd int, the max-pool window of the center NMS. Defaults to 7 (the
            Panoptic-DeepLab paper; deeplab2 uses 13 on Cityscapes, 41 on COCO).
        keep_k_centers: int, the most centers kept per image. Defaults to 200.
        stuff_area_limit: int, stuff classes covering fewer pixels of an image become void.
            Defaults to 4096 (deeplab2 COCO; 2048 on Cityscapes).

    Returns:
        A dict of
        - `"panoptic"`: int32 `[B, H, W]`, `class * label_divisor + instance` (instance 0 for
          stuff), `void_label * label_divisor` for void pixels.
        - `"semantic"`: int32 `[B, H, W]`, the argmax semantic prediction (for mIoU; the
          panoptic map's classes differ where the majority vote relabels thing pixels, and
          where pixels are void).
        - `"instance"`: int32 `[B, H, W]`, the 1-based slot of the center a thing pixel joined
          (unique within the image; slot `s` is index `s - 1` of the two outputs below), 0 for
          stuff and void. The per-class renumbered id is `panoptic % label_divisor`.
        - `"instance_scores"`: float32 `[B, keep_k_centers]`, the score of each kept center's
          instance, sorted by decreasing center score; 0 for unused slots.
        - `"instance_panoptic_ids"`: int32 `[B, keep_k_centers]`, the panoptic id of each
          slot's segment; -1 for unused slots and centers that claimed no pixel.

    Example:

    >>> import numpy as np
    >>> logits = np.zeros((1, 33, 33, 3), "float32"); logits[..., 2] = 5.0  # all class 2
    >>> heatmap = np.zeros((1, 33, 33, 1), "float32"); heatmap[0, 16, 16, 0] = 0.9
    >>> out = panoptic_deeplab_postprocess(
    ...     logits, heatmap, np.zeros((1, 33, 33, 2), "float32"),
    ...     thing_class_ids=[2], label_divisor=1000, void_label=255)
    >>> int(out["panoptic"][0, 0, 0]), int(out["instance_panoptic_ids"][0, 0])
    (2001, 2001)

    Reference:
        Cheng et al., "Panoptic-DeepLab: A Simple, Strong, and Fast Baseline for Bottom-Up
        Panoptic Segmentation", CVPR 2020; Yang et al., "DeeperLab", 2019 (majority vote).
    """
    semantic_logits = ops.convert_to_tensor(semantic_logits)
    center_heatmap = ops.convert_to_tensor(center_heatmap)
    offsets = ops.convert_to_tensor(offsets)
    _check_input("semantic_logits", semantic_logits, None)
    _check_input("center_heatmap", center_heatmap, 1)
    _check_input("offsets", offsets, 2)
    num_classes = semantic_logits.shape[-1]
    if num_classes is None:
        raise ValueError(
            "`semantic_logits` must have a static number of classes (last dimension). "
            f"Received: semantic_logits.shape={tuple(semantic_logits.shape)}"
        )
    settings = validate_postprocessing_arguments(
        num_classes=num_classes,
        thing_class_ids=thing_class_ids,
        label_divisor=label_divisor,
        void_label=void_label,
        center_threshold=center_threshold,
        nms_kernel=nms_kernel,
        keep_k_centers=keep_k_centers,
        stuff_area_limit=stuff_area_limit,
    )
    keep_k = settings["keep_k_centers"]
    label_divisor = settings["label_divisor"]
    void_value = settings["void_label"] * label_divisor
    slots = keep_k + 1  # slot 0: no instance; slot s: kept center s - 1
    chunk = PIXEL_CHUNK_SIZE
    block = CENTER_BLOCK_SIZE

    semantic_logits = ops.cast(semantic_logits, "float32")
    center_heatmap = ops.cast(center_heatmap, "float32")
    offsets = ops.cast(offsets, "float32")
    batch, height, width = ops.shape(semantic_logits)[:3]

    # Pixels are flattened row-major: [B, P] with P = H * W, or [B * P] ("flat").
    logits = ops.reshape(semantic_logits, (-1, num_classes))  # [B * P, C]
    semantic = ops.reshape(_first_argmax(logits), (batch, -1))  # [B, P]
    num_pixels = ops.shape(semantic)[1]
    width_int = ops.cast(width, "int32")
    is_thing = _is_thing(semantic, settings["thing_class_ids"], num_classes)  # [B, P]
    image_index = ops.cast(ops.arange(batch), "int32")[:, None]  # [B, 1]

    # Stuff areas: a histogram of (image, class) over all pixels.
    class_area = ops.segment_sum(
        ops.ones_like(ops.reshape(semantic, (-1,))),
        ops.reshape(image_index * num_classes + semantic, (-1,)),
        num_segments=batch * num_classes,
    )
    stuff_kept = class_area >= settings["stuff_area_limit"]  # [B * C]

    # Centers, in blocks: [B, num_blocks, block] coordinates, +inf where no center was kept.
    center_scores, center_indices, center_valid = _extract_centers(
        center_heatmap[..., 0], settings["center_threshold"], settings["nms_kernel"], keep_k
    )
    num_blocks = -(-keep_k // block)
    block_padding = ((0, 0), (0, num_blocks * block - keep_k))

    def center_blocks(coordinate):
        coordinate = ops.where(center_valid, ops.cast(coordinate, "float32"), np.inf)
        coordinate = ops.pad(coordinate, block_padding, constant_values=np.inf)
        return ops.reshape(coordinate, (batch, num_blocks, block))

    center_y = center_blocks(center_indices // width_int)
    center_x = center_blocks(center_indices % width_int)
    # Valid centers come first (sorted by score): the blocks holding one, per image.
    blocks_used = (ops.sum(ops.cast(center_valid, "int32"), axis=1) + (block - 1)) // block

    # Gather the thing pixels of each image into a region of whole chunks, the images one after
    # the other: `entries` holds flat pixel index + 1, 0 for padding.
    thing_count = ops.cumsum(ops.cast(is_thing, "int32"), axis=1)  # [B, P]
    chunks_per_image = (thing_count[:, -1] + (chunk - 1)) // chunk  # [B]
    chunk_end = ops.cumsum(chunks_per_image)  # [B]
    total_chunks = chunk_end[-1]
    region_start = (chunk_end - chunks_per_image) * chunk  # [B]
    position = ops.maximum(region_start[:, None] + thing_count - 1, 0)  # [B, P]
    # Enough for any content: the sum over images of ceil(n / chunk) * chunk <= B * (P + chunk).
    buffer_size = batch * (num_pixels + chunk)
    entries = ops.scatter(
        ops.reshape(ops.where(is_thing, position, buffer_size), (-1, 1)),
        ops.where(
            ops.reshape(is_thing, (-1,)),
            ops.cast(ops.arange(batch * num_pixels), "int32") + 1,
            0,
        ),
        (buffer_size + 1,),
    )
    offsets = ops.reshape(offsets, (-1, 2))  # [B * P, (dy, dx)]
    semantic_flat = ops.reshape(semantic, (-1,))

    def chunk_pixels(start, size):
        """Image of the chunk at `start`, its flat pixel indices [size] and their validity."""
        image = ops.sum(ops.cast(chunk_end * chunk <= start, "int32"))
        chunk_entries = ops.slice(entries, (start,), (size,))
        return image, ops.maximum(chunk_entries - 1, 0), chunk_entries > 0

    # Pass 1 over thing pixels: nearest center and the (image, slot, class) votes. Slot s is
    # kept center s - 1; slot 0 means no instance.
    def group_chunk(step, votes, slot_buffer):
        image, pixel, valid = chunk_pixels(step * chunk, chunk)
        local = pixel - image * num_pixels
        pixel_offsets = ops.take(offsets, pixel, axis=0)  # [S, 2]
        nearest = _nearest_center(
            ops.cast(local // width_int, "float32") + pixel_offsets[:, 0],
            ops.cast(local % width_int, "float32") + pixel_offsets[:, 1],
            ops.take(center_y, image, axis=0),
            ops.take(center_x, image, axis=0),
            ops.take(blocks_used, image, axis=0),
        )
        slot = ops.where(ops.logical_and(valid, nearest >= 0), nearest + 1, 0)  # [S]
        pair = (image * slots + slot) * num_classes + ops.take(semantic_flat, pixel, axis=0)
        votes = votes + ops.segment_sum(
            ops.cast(slot > 0, "int32"), pair, num_segments=batch * slots * num_classes
        )
        return step + 1, votes, ops.slice_update(slot_buffer, (step * chunk,), slot)

    zero = ops.convert_to_tensor(0, "int32")
    _, votes, slot_buffer = ops.while_loop(
        lambda step, *_: step < total_chunks,
        group_chunk,
        (
            zero,
            ops.zeros((batch * slots * num_classes,), "int32"),
            ops.zeros((buffer_size,), "int32"),
        ),
    )

    # Majority vote (ties: the smaller class id; an int argmax is a TFLite builtin) and
    # renumbering per class in slot order: slot k gets the number of present slots j <= k of
    # its class.
    votes = ops.reshape(votes, (batch, slots, num_classes))[:, 1:, :]  # [B, K, C]
    instance_class = ops.cast(ops.argmax(votes, axis=-1), "int32")  # [B, K]
    instance_area = ops.sum(votes, axis=-1)
    instance_present = instance_area > 0
    same_class = ops.logical_and(
        instance_class[:, :, None] == instance_class[:, None, :], instance_present[:, None, :]
    )
    earlier_or_self = ops.convert_to_tensor(np.tril(np.ones((keep_k, keep_k), "bool")))
    same_class = ops.logical_and(same_class, earlier_or_self[None])  # [B, k, j]
    instance_id = ops.sum(ops.cast(same_class, "int32"), axis=-1)
    instance_panoptic_ids = ops.where(
        instance_present, instance_class * label_divisor + instance_id, -1
    )

    # Per-pixel maps: thing pixels read their slot back (slot 0: void), stuff pixels keep their
    # class unless its area is below the limit.
    instance_slot = ops.where(is_thing, ops.take(slot_buffer, position, axis=0), 0)  # [B, P]
    slot_values = ops.concatenate(
        [ops.full((batch, 1), void_value, "int32"), ops.maximum(instance_panoptic_ids, 0)], 1
    )
    thing_values = ops.take(
        ops.reshape(slot_values, (-1,)), image_index * slots + instance_slot, axis=0
    )
    stuff_values = ops.where(
        ops.take(stuff_kept, image_index * num_classes + semantic, axis=0),
        semantic * label_divisor,
        void_value,
    )
    panoptic = ops.where(is_thing, thing_values, stuff_values)

    # Pass 2 over thing pixels: the softmax probability of the instance's class, summed per
    # slot. The exponentials (C per pixel) are the costly part, hence only for thing pixels.
    score_chunk_size = _rows_per_chunk(num_classes)  # divides `chunk`: one image per chunk
    instance_class_flat = ops.reshape(instance_class, (-1,))
    row_start = ops.cast(ops.arange(score_chunk_size), "int32") * num_classes

    def score_chunk(step, probability_sums):
        start = step * score_chunk_size
        image, pixel, valid = chunk_pixels(start, score_chunk_size)
        slot = ops.slice(slot_buffer, (start,), (score_chunk_size,))
        pixel_class = ops.take(
            instance_class_flat, image * keep_k + ops.maximum(slot - 1, 0), axis=0
        )
        rows = ops.take(logits, pixel, axis=0)  # [S, C]
        exponentials = ops.exp(rows - ops.max(rows, axis=-1, keepdims=True))
        chosen = ops.take(  # exponentials[s, pixel_class[s]]
            ops.reshape(exponentials, (-1,)), row_start + pixel_class, axis=0
        )
        probability = ops.where(
            ops.logical_and(valid, slot > 0), chosen / ops.sum(exponentials, axis=-1), 0.0
        )
        return step + 1, probability_sums + ops.segment_sum(
            probability, image * slots + slot, num_segments=batch * slots
        )

    _, probability_sums = ops.while_loop(
        lambda step, *_: step * score_chunk_size < total_chunks * chunk,
        score_chunk,
        (zero, ops.zeros((batch * slots,), "float32")),
    )
    probability_sums = ops.reshape(probability_sums, (batch, slots))[:, 1:]
    mean_probability = probability_sums / ops.cast(ops.maximum(instance_area, 1), "float32")
    instance_scores = ops.where(instance_present, mean_probability * center_scores, 0.0)

    output_shape = (batch, height, width)
    return {
        "panoptic": ops.reshape(panoptic, output_shape),
        "semantic": ops.reshape(semantic, output_shape),
        "instance": ops.reshape(instance_slot, output_shape),
        "instance_scores": instance_scores,
        "instance_panoptic_ids": instance_panoptic_ids,
    }


def scores_by_segment(instance_scores, instance_panoptic_ids):
    """Converts the fixed-size score layout to one `{panoptic_id: score}` dict per image.

    Args:
        instance_scores: float `[B, K]`, the `"instance_scores"` output of
            `panoptic_deeplab_postprocess` (numpy or tensor).
        instance_panoptic_ids: int `[B, K]`, its `"instance_panoptic_ids"` output.

    Returns:
        A list of B dicts mapping each predicted thing segment's panoptic id to its score
        (slots with id -1 are left out). Together with the `"panoptic"` map this is what the
        instance-AP evaluation consumes.

    Example:

    >>> scores_by_segment([[0.9, 0.5, 0.0]], [[11001, 12001, -1]])
    [{11001: 0.9, 12001: 0.5}]
    """
    scores = np.asarray(keras.ops.convert_to_numpy(instance_scores), dtype=np.float64)
    ids = np.asarray(keras.ops.convert_to_numpy(instance_panoptic_ids))
    if scores.ndim != 2 or scores.shape != ids.shape:
        raise ValueError(
            "`instance_scores` and `instance_panoptic_ids` must both have shape [batch, K]. "
            f"Received: instance_scores.shape={scores.shape}, "
            f"instance_panoptic_ids.shape={ids.shape}"
        )
    result = []
    for image_scores, image_ids in zip(scores, ids):
        used = image_ids >= 0
        result.append(
            {int(i): float(s) for i, s in zip(image_ids[used], image_scores[used])}
        )
    return result


# No data-dependent Python control flow here, so TensorFlow's AutoGraph has nothing to convert,
# but converting it would take seconds per trace: this is the marker that
# `tf.autograph.experimental.do_not_convert` sets (an attribute, so no TensorFlow import).
panoptic_deeplab_postprocess.autograph_info__ = {}

"""Plain numpy Panoptic-DeepLab post-processing, one image and one instance at a time.

Independent of the Keras implementation (no chunks, no compaction, explicit loops), written from
the rules in SPEC section 6 and the docstring of `panoptic_deeplab_postprocess`. Positions and
distances use float32 like the library so that near-ties are resolved the same way.
"""

import numpy as np


def _max_pool_same(values, kernel):
    radius = kernel // 2
    padded = np.pad(values, radius, constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel))
    return windows.max(axis=(-1, -2))


def postprocess_image(
    logits,
    heatmap,
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
    """One image: logits [H, W, C], heatmap [H, W, 1], offsets [H, W, 2] -> dict as the library."""
    logits = np.asarray(logits, np.float32)
    height, width, num_classes = logits.shape
    semantic = np.argmax(logits, axis=-1).astype(np.int32)
    void_value = void_label * label_divisor

    heat = np.asarray(heatmap, np.float32)[..., 0]
    heat = np.where(heat > center_threshold, heat, 0.0).astype(np.float32)
    peaks = (heat == _max_pool_same(heat, nms_kernel)) & (heat > 0)
    ys, xs = np.nonzero(peaks)
    scores = heat[ys, xs]
    order = np.lexsort((ys * width + xs, -scores))[:keep_k_centers]
    centers = [(float(ys[i]), float(xs[i]), float(scores[i])) for i in order]

    is_thing = np.isin(semantic, thing_class_ids)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    pred_y = rows.astype(np.float32) + np.asarray(offsets, np.float32)[..., 0]
    pred_x = cols.astype(np.float32) + np.asarray(offsets, np.float32)[..., 1]
    nearest = np.full((height, width), -1, np.int32)
    best = np.full((height, width), np.inf, np.float32)
    for index, (cy, cx, _) in enumerate(centers):
        distance = np.square(pred_y - np.float32(cy)) + np.square(pred_x - np.float32(cx))
        closer = distance < best
        best[closer] = distance[closer]
        nearest[closer] = index
    instance = np.where(is_thing & (nearest >= 0), nearest + 1, 0).astype(np.int32)

    panoptic = np.full((height, width), void_value, np.int32)
    for class_id in range(num_classes):
        if class_id in thing_class_ids:
            continue
        mask = semantic == class_id
        if mask.sum() >= stuff_area_limit:
            panoptic[mask] = class_id * label_divisor

    shifted = logits - logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    instance_scores = np.zeros((keep_k_centers,), np.float32)
    instance_panoptic_ids = np.full((keep_k_centers,), -1, np.int32)
    next_id = {}
    for index, (_, _, center_score) in enumerate(centers):
        mask = instance == index + 1
        if not mask.any():
            continue
        class_id = int(np.argmax(np.bincount(semantic[mask], minlength=num_classes)))
        next_id[class_id] = next_id.get(class_id, 0) + 1
        panoptic_id = class_id * label_divisor + next_id[class_id]
        panoptic[mask] = panoptic_id
        instance_panoptic_ids[index] = panoptic_id
        instance_scores[index] = probabilities[mask, class_id].mean() * center_score
    return {
        "panoptic": panoptic,
        "semantic": semantic,
        "instance": instance,
        "instance_scores": instance_scores,
        "instance_panoptic_ids": instance_panoptic_ids,
    }


def postprocess(logits, heatmap, offsets, **kwargs):
    """Batched wrapper: stacks `postprocess_image` over the batch."""
    images = [
        postprocess_image(l, h, o, **kwargs) for l, h, o in zip(logits, heatmap, offsets)
    ]
    return {key: np.stack([image[key] for image in images]) for key in images[0]}

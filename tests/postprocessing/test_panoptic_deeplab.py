"""Panoptic-DeepLab post-processing on hand-made inputs with known answers, and vs numpy."""

import numpy as np
import pytest
import tensorflow as tf

from keras_axial.postprocessing import panoptic_deeplab
from keras_axial.postprocessing import panoptic_deeplab_postprocess
from keras_axial.postprocessing import scores_by_segment
from tests.postprocessing import numpy_postprocess

VOID = 255 * 1000
SETTINGS = dict(label_divisor=1000, void_label=255, nms_kernel=3, stuff_area_limit=1)
CONFIDENCE = 5.0


def make_inputs(semantic, centers, owner, num_classes):
    """Model outputs that decode to a known answer.

    semantic: int [B, H, W] argmax classes; centers: per image a list of (y, x, score) peaks;
    owner: int [B, H, W], the index in that list of the center a pixel points to (-1: none).
    """
    semantic = np.asarray(semantic)
    owner = np.asarray(owner)
    batch, height, width = semantic.shape
    logits = np.zeros((batch, height, width, num_classes), "float32")
    np.put_along_axis(logits, semantic[..., None], CONFIDENCE, axis=-1)
    heatmap = np.zeros((batch, height, width, 1), "float32")
    offsets = np.zeros((batch, height, width, 2), "float32")
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    for b, image_centers in enumerate(centers):
        for index, (y, x, score) in enumerate(image_centers):
            heatmap[b, y, x, 0] = score
            mask = owner[b] == index
            offsets[b][mask] = np.stack([y - rows[mask], x - cols[mask]], axis=-1)
    return logits, heatmap, offsets


def probability(num_classes, same_class=True):
    """Softmax probability of a class in the one-hot logits of `make_inputs`."""
    top = np.exp(CONFIDENCE) if same_class else 1.0
    return top / (np.exp(CONFIDENCE) + num_classes - 1)


def run(inputs, **kwargs):
    settings = {**SETTINGS, **kwargs}
    outputs = panoptic_deeplab_postprocess(*inputs, **settings)
    outputs = {key: np.asarray(value) for key, value in outputs.items()}
    reference = numpy_postprocess.postprocess(*inputs, **settings)
    for key in ("panoptic", "semantic", "instance", "instance_panoptic_ids"):
        np.testing.assert_array_equal(outputs[key], reference[key], err_msg=key)
    np.testing.assert_allclose(outputs["instance_scores"], reference["instance_scores"], atol=1e-6)
    return outputs


def touching_instances():
    """8 x 12, stuff class 0; two class-1 instances side by side (columns 2-5 and 6-9)."""
    semantic = np.zeros((1, 8, 12), "int32")
    semantic[0, 2:6, 2:10] = 1
    owner = np.full((1, 8, 12), -1)
    owner[0, 2:6, 2:6] = 0
    owner[0, 2:6, 6:10] = 1
    return semantic, [[(3, 3, 0.9), (4, 8, 0.7)]], owner


def test_two_touching_instances():
    semantic, centers, owner = touching_instances()
    logits, heatmap, offsets = make_inputs(semantic, centers, owner, num_classes=2)
    # Pixel (5, 5) points halfway between the two centers: the higher-scoring one wins the tie.
    offsets[0, 5, 5] = [3.5 - 5, 5.5 - 5]
    out = run((logits, heatmap, offsets), thing_class_ids=[1], keep_k_centers=4)
    expected = np.zeros((8, 12), "int32")
    expected[2:6, 2:6] = 1001
    expected[2:6, 6:10] = 1002
    np.testing.assert_array_equal(out["panoptic"][0], expected)
    np.testing.assert_array_equal(out["instance"][0], np.where(expected > 0, expected - 1000, 0))
    np.testing.assert_array_equal(out["semantic"], semantic)
    np.testing.assert_array_equal(out["instance_panoptic_ids"][0], [1001, 1002, -1, -1])
    np.testing.assert_allclose(
        out["instance_scores"][0], [0.9 * probability(2), 0.7 * probability(2), 0, 0], rtol=1e-6
    )


def test_instance_split_across_semantic_classes_takes_the_majority_class():
    # Classes: 0 stuff, 1 and 2 things. Instance A: 6 pixels of class 1 and 4 of class 2.
    # Instance B: 3 and 3 (a tie: the smaller id, 1, wins). Both become class 1, ids 1 and 2.
    semantic = np.zeros((1, 6, 10), "int32")
    owner = np.full((1, 6, 10), -1)
    semantic[0, 1, 0:6], semantic[0, 2, 0:4] = 1, 2
    owner[0, 1, 0:6], owner[0, 2, 0:4] = 0, 0
    semantic[0, 4, 5:8], semantic[0, 5, 5:8] = 2, 1
    owner[0, 4, 5:8], owner[0, 5, 5:8] = 1, 1
    centers = [[(1, 2, 0.8), (5, 6, 0.6)]]
    inputs = make_inputs(semantic, centers, owner, num_classes=3)
    out = run(inputs, thing_class_ids=[1, 2], keep_k_centers=3)
    panoptic = out["panoptic"][0]
    assert set(panoptic[owner[0] == 0]) == {1001} and set(panoptic[owner[0] == 1]) == {1002}
    np.testing.assert_array_equal(out["instance_panoptic_ids"][0], [1001, 1002, -1])
    high, low = probability(3), probability(3, same_class=False)
    np.testing.assert_allclose(
        out["instance_scores"][0, :2],
        [0.8 * (6 * high + 4 * low) / 10, 0.6 * (3 * high + 3 * low) / 6],
        rtol=1e-6,
    )
    # The semantic output stays the argmax, for mIoU.
    np.testing.assert_array_equal(out["semantic"], semantic)


def test_no_center_makes_thing_pixels_void():
    semantic, centers, owner = touching_instances()
    logits, heatmap, offsets = make_inputs(semantic, centers, owner, num_classes=2)
    heatmap = np.minimum(heatmap, 0.1)  # at the threshold: not a center
    out = run((logits, heatmap, offsets), thing_class_ids=[1], keep_k_centers=5)
    np.testing.assert_array_equal(out["panoptic"][0], np.where(semantic[0] == 1, VOID, 0))
    assert not out["instance"].any()
    np.testing.assert_array_equal(out["instance_panoptic_ids"], -np.ones((1, 5)))
    np.testing.assert_array_equal(out["instance_scores"], np.zeros((1, 5)))


def test_more_peaks_than_k_keeps_exactly_the_top_k_by_score():
    # Seven isolated peaks, three of them at 0.5: with k = 5, two of those are kept, in row-major
    # pixel order. deeplab2's unsorted top-k + strict '>' its k-th score would keep three centers.
    peaks = [
        (1, 1, 0.6), (1, 9, 0.9), (5, 5, 0.5), (5, 1, 0.5), (9, 9, 0.8), (9, 1, 0.5), (5, 9, 0.3)
    ]
    semantic = np.ones((1, 11, 11), "int32")
    owner = np.full((1, 11, 11), -1)
    for index, (y, x, _) in enumerate(peaks):
        owner[0, max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = index
    semantic[owner == -1] = 0
    inputs = make_inputs(semantic, [peaks], owner, num_classes=2)
    out = run(inputs, thing_class_ids=[1], keep_k_centers=5)
    # Kept, in order: 0.9 (1,9), 0.8 (9,9), 0.6 (1,1), then the 0.5 ties (5,1) before (5,5).
    np.testing.assert_array_equal(out["instance_panoptic_ids"][0], [1001, 1002, 1003, 1004, 1005])
    kept = {(1, 9): 1001, (9, 9): 1002, (1, 1): 1003, (5, 1): 1004, (5, 5): 1005}
    for (y, x), panoptic_id in kept.items():
        assert out["panoptic"][0, y, x] == panoptic_id
    # Pixels of dropped peaks join the nearest kept center.
    assert out["panoptic"][0, 9, 1] in kept.values() and out["panoptic"][0, 5, 9] in kept.values()


def test_stuff_regions_below_the_area_limit_become_void():
    semantic = np.zeros((1, 4, 8), "int32")
    semantic[0, 0, :5] = 2  # area 5 < 6: void
    semantic[0, 3, :6] = 3  # area 6: kept (the limit is strict)
    inputs = make_inputs(semantic, [[]], np.full((1, 4, 8), -1), num_classes=4)
    out = run(inputs, thing_class_ids=[1], stuff_area_limit=6, keep_k_centers=2)
    expected = np.where(semantic[0] == 2, VOID, semantic[0] * 1000)
    np.testing.assert_array_equal(out["panoptic"][0], expected)


def test_batch_of_three_images_with_different_contents():
    cases = [touching_instances()]
    semantic, centers, owner = touching_instances()
    mirrored_centers = [[(3, 8, 0.4), (4, 3, 0.95)]]
    cases.append((np.flip(semantic, 2).copy(), mirrored_centers, np.flip(owner, 2).copy()))
    cases.append((np.zeros_like(semantic), [[]], np.full_like(owner, -1)))  # stuff only
    images = [make_inputs(*case, num_classes=2) for case in cases]
    batched = [np.concatenate(parts) for parts in zip(*images)]
    out = run(batched, thing_class_ids=[1], keep_k_centers=4)
    for index, image in enumerate(images):
        single = run(image, thing_class_ids=[1], keep_k_centers=4)
        for key in out:
            np.testing.assert_array_equal(out[key][index], single[key][0], err_msg=key)
    np.testing.assert_array_equal(
        out["instance_panoptic_ids"][:, :3], [[1001, 1002, -1], [1001, 1002, -1], [-1, -1, -1]]
    )
    # Image 2: the 0.95 center is now on the right half and comes first.
    assert out["panoptic"][1, 4, 3] == 1001 and out["panoptic"][1, 3, 8] == 1002


def random_inputs(rng, batch, height, width, num_classes):
    logits = rng.normal(size=(batch, height, width, num_classes)).astype("float32") * 2
    heatmap = (rng.uniform(size=(batch, height, width, 1)) ** 3).astype("float32")
    offsets = (rng.normal(size=(batch, height, width, 2)) * 4).astype("float32")
    return logits, heatmap, offsets


@pytest.mark.parametrize("chunk, block", [(65536, 16), (32, 4)])
def test_random_inputs_match_the_numpy_reference(monkeypatch, chunk, block):
    # Small chunks and center blocks exercise many regions, chunks and blocks per image.
    monkeypatch.setattr(panoptic_deeplab, "PIXEL_CHUNK_SIZE", chunk)
    monkeypatch.setattr(panoptic_deeplab, "CENTER_BLOCK_SIZE", block)
    rng = np.random.default_rng(0)
    for batch, height, width in [(2, 17, 23), (3, 9, 5), (1, 3, 4)]:
        inputs = random_inputs(rng, batch, height, width, 6)
        run(inputs, thing_class_ids=[1, 3, 4], keep_k_centers=18, stuff_area_limit=12)
    # Thing ids in many runs take the table lookup instead of range comparisons.
    inputs = random_inputs(rng, 2, 12, 10, 12)
    run(inputs, thing_class_ids=[0, 2, 4, 6, 8, 11], keep_k_centers=18, stuff_area_limit=12)


def test_low_precision_inputs():
    semantic, centers, owner = touching_instances()
    inputs = make_inputs(semantic, centers, owner, num_classes=2)
    reference = panoptic_deeplab_postprocess(*inputs, thing_class_ids=[1], **SETTINGS)
    for dtype in ("bfloat16", "float16"):
        out = panoptic_deeplab_postprocess(
            *[tf.cast(x, dtype) for x in inputs], thing_class_ids=[1], **SETTINGS
        )
        assert out["panoptic"].dtype == "int32" and out["instance_scores"].dtype == "float32"
        np.testing.assert_array_equal(out["panoptic"], reference["panoptic"])


def test_invalid_arguments():
    inputs = random_inputs(np.random.default_rng(0), 1, 4, 4, 3)
    cases = [
        (dict(thing_class_ids=[3]), ValueError, "num_classes=3"),
        (dict(thing_class_ids=[1, 1]), ValueError, "repeated"),
        (dict(thing_class_ids="1"), TypeError, "thing_class_ids"),
        (dict(thing_class_ids=[1], nms_kernel=4), ValueError, "odd"),
        (dict(thing_class_ids=[1], keep_k_centers=1000), ValueError, "label_divisor"),
        (dict(thing_class_ids=[1], void_label=1), ValueError, "thing class"),
        (dict(thing_class_ids=[1], center_threshold=-0.5), ValueError, "center_threshold"),
        (dict(thing_class_ids=[1], label_divisor=2**30), ValueError, "overflow"),
    ]
    for overrides, error, match in cases:
        with pytest.raises(error, match=match):
            panoptic_deeplab_postprocess(*inputs, **{**SETTINGS, **overrides})
    with pytest.raises(ValueError, match="offsets"):
        panoptic_deeplab_postprocess(
            inputs[0], inputs[1], inputs[2][..., :1], thing_class_ids=[1], **SETTINGS
        )


def test_scores_by_segment():
    assert scores_by_segment(
        np.array([[0.9, 0.5, 0.0], [0.0, 0.0, 0.0]], "float32"),
        np.array([[11001, 12001, -1], [-1, -1, -1]]),
    ) == [{11001: pytest.approx(0.9), 12001: pytest.approx(0.5)}, {}]
    with pytest.raises(ValueError, match="shape"):
        scores_by_segment(np.zeros((2, 3)), np.zeros((2, 4)))

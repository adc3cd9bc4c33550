"""Tests for `keras_axial.data.targets` on hand-made label maps with known answers."""

import numpy as np
import pytest
import tensorflow as tf

from keras_axial.data import get_dataset_spec
from keras_axial.data.targets import PanopticTargetGenerator, generate_panoptic_targets

DIVISOR, IGNORE = 256, 255
STUFF, THING_A, THING_B = 0, 3, 4
SIGMA = 8.0


def _targets(panoptic, **kwargs):
    return {
        k: v.numpy()
        for k, v in generate_panoptic_targets(
            panoptic, thing_class_ids=[THING_A, THING_B], label_divisor=DIVISOR,
            ignore_label=IGNORE, **kwargs,
        ).items()
    }


def _windowed_gaussian(height, width, centers):
    radius = int(round(3 * SIGMA)) + 1
    yy, xx = np.mgrid[:height, :width]
    heat = np.zeros((height, width))
    for cy, cx in centers:
        g = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * SIGMA**2))
        g[(np.abs(yy - cy) > radius) | (np.abs(xx - cx) > radius)] = 0
        heat = np.maximum(heat, g)
    return heat


@pytest.fixture
def scene():
    """A 100 x 120 map: stuff, a big instance, a small one at the border, crowd and void."""
    panoptic = np.full((100, 120), STUFF * DIVISOR, np.int32)
    panoptic[10:90, 20:100] = THING_A * DIVISOR + 1  # 80 x 80 = 6400 px, centre (49.5, 59.5)
    panoptic[0:11, 110:120] = THING_B * DIVISOR + 7  # 11 x 10 = 110 px at the corner
    panoptic[95:100, 0:10] = THING_A * DIVISOR  # crowd (instance 0 of a thing class)
    panoptic[0:5, 0:5] = IGNORE * DIVISOR  # void
    return panoptic


def test_targets_on_a_hand_made_scene(scene):
    t = _targets(scene)
    height, width = scene.shape
    big = scene == THING_A * DIVISOR + 1
    small = scene == THING_B * DIVISOR + 7
    crowd = scene == THING_A * DIVISOR
    void = scene == IGNORE * DIVISOR

    np.testing.assert_array_equal(t["semantic"], scene // DIVISOR)
    assert t["semantic"].dtype == np.int32
    # Centres are rounded half up: (49.5, 59.5) -> (50, 60); (5, 114.5) -> (5, 115).
    yy, xx = np.mgrid[:height, :width]
    np.testing.assert_array_equal(t["offsets"][..., 0][big], (50 - yy)[big])
    np.testing.assert_array_equal(t["offsets"][..., 1][big], (60 - xx)[big])
    np.testing.assert_array_equal(t["offsets"][..., 0][small], (5 - yy)[small])
    np.testing.assert_array_equal(t["offsets"][..., 1][small], (115 - xx)[small])
    assert not t["offsets"][~(big | small)].any()
    np.testing.assert_array_equal(t["offset_weights"], (big | small).astype(np.float32))

    expected_heat = _windowed_gaussian(height, width, [(50, 60), (5, 115)])
    np.testing.assert_allclose(t["center_heatmap"][..., 0], expected_heat, atol=1e-6)
    assert t["center_heatmap"][50, 60, 0] == 1.0 and t["center_heatmap"][5, 115, 0] == 1.0
    np.testing.assert_array_equal(t["center_weights"], (~(crowd | void)).astype(np.float32))

    expected_weights = np.ones((height, width), np.float32)
    expected_weights[small] = 3.0
    expected_weights[void] = 0.0
    np.testing.assert_array_equal(t["semantic_weights"], expected_weights)
    # Crowd keeps its class in the semantic target.
    assert (t["semantic"][crowd] == THING_A).all()


def test_same_instance_id_in_two_classes_are_two_instances():
    panoptic = np.zeros((40, 40), np.int32)
    panoptic[:, :20] = THING_A * DIVISOR + 1
    panoptic[:, 20:] = THING_B * DIVISOR + 1
    t = _targets(panoptic)
    assert t["offsets"][0, 0, 1] == 10 - 0  # centre x of the left half is round(9.5) = 10
    assert t["offsets"][0, 39, 1] == 30 - 39  # right half: round(29.5) = 30


def test_overlapping_gaussians_take_the_max_and_small_area_threshold():
    panoptic = np.zeros((64, 64), np.int32)
    panoptic[10:12, 10:12] = THING_A * DIVISOR + 1  # centre (11, 11), 4 px
    panoptic[14:16, 14:16] = THING_A * DIVISOR + 2  # centre (15, 15)
    t = _targets(panoptic, sigma=4.0, small_instance_area=4, small_instance_weight=2.0)
    heat = t["center_heatmap"][..., 0]
    d2 = lambda y, x, cy, cx: (y - cy) ** 2 + (x - cx) ** 2  # noqa: E731
    expected = max(np.exp(-d2(13, 12, 11, 11) / 32), np.exp(-d2(13, 12, 15, 15) / 32))
    np.testing.assert_allclose(heat[13, 12], expected, rtol=1e-6)
    assert (t["semantic_weights"] == 1.0).all()  # area 4 is not < 4


def test_batched_equals_unbatched_and_works_on_symbolic_shapes(scene):
    other = np.roll(scene, 13, axis=1)
    batched = _targets(np.stack([scene, other]))
    for index, image in enumerate([scene, other]):
        single = _targets(image)
        for key in single:
            np.testing.assert_array_equal(batched[key][index], single[key], err_msg=key)

    generator = PanopticTargetGenerator(get_dataset_spec("synthetic"), sigma=SIGMA)
    dataset = tf.data.Dataset.from_generator(
        lambda: iter([scene]), output_signature=tf.TensorSpec([None, None], tf.int32)
    ).map(generator)
    element = next(iter(dataset))
    assert element["center_heatmap"].shape == (100, 120, 1)
    assert element["offsets"].shape == (100, 120, 2)


def test_image_without_instances():
    panoptic = tf.fill([33, 17], STUFF * DIVISOR)
    t = generate_panoptic_targets(
        panoptic, thing_class_ids=[THING_A], label_divisor=DIVISOR, ignore_label=IGNORE
    )
    assert float(tf.reduce_max(t["center_heatmap"])) == 0.0
    assert float(tf.reduce_sum(t["offset_weights"])) == 0.0
    assert float(tf.reduce_min(t["center_weights"])) == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(label_divisor=1), "label_divisor"),
        (dict(thing_class_ids=[300]), "thing_class_ids"),
        (dict(sigma=0), "sigma"),
    ],
)
def test_argument_errors(kwargs, message):
    arguments = dict(thing_class_ids=[1], label_divisor=256, ignore_label=255)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generate_panoptic_targets(tf.zeros([4, 4], tf.int32), **arguments)
    with pytest.raises(ValueError, match="shape"):
        generate_panoptic_targets(
            tf.zeros([4], tf.int32), thing_class_ids=[1], label_divisor=256, ignore_label=255
        )

"""Panoptic tf.data pipelines: contract shapes, determinism, evaluation padding, sharding."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_axial.data import get_dataset_spec
from keras_axial.data.panoptic_pipeline import build_panoptic_dataset, panoptic_dataset_fn

CROP = (65, 81)


def _first(dataset):
    images, targets = next(iter(dataset))
    return images.numpy(), {k: v.numpy() for k, v in targets.items()}


def test_training_batches_follow_the_contract(synthetic_tfrecords):
    spec = get_dataset_spec("synthetic")
    dataset = build_panoptic_dataset(synthetic_tfrecords, batch_size=3, crop_size=CROP, seed=0)
    images, targets = dataset.element_spec
    assert images.shape == (3,) + CROP + (3,) and images.dtype == tf.float32
    expected = {
        "semantic": ((3,) + CROP, tf.int32), "semantic_weights": ((3,) + CROP, tf.float32),
        "center_heatmap": ((3,) + CROP + (1,), tf.float32),
        "center_weights": ((3,) + CROP, tf.float32),
        "offsets": ((3,) + CROP + (2,), tf.float32), "offset_weights": ((3,) + CROP, tf.float32),
    }
    assert {k: (tuple(v.shape), v.dtype) for k, v in targets.items()} == expected
    for images, targets in dataset.take(6):  # repeats past the 12 images
        assert 0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255
        classes = set(np.unique(targets["semantic"]))
        assert classes <= set(range(spec.num_classes)) | {spec.ignore_label}
        ignored = targets["semantic"].numpy() == spec.ignore_label
        assert not targets["semantic_weights"].numpy()[ignored].any()


def test_same_seed_same_batches_whatever_the_parallelism(synthetic_tfrecords):
    kwargs = dict(batch_size=2, crop_size=CROP, seed=5, photometric_probability=1.0)
    parallel = build_panoptic_dataset(synthetic_tfrecords, **kwargs)
    serial = build_panoptic_dataset(synthetic_tfrecords, num_parallel_calls=None, **kwargs)
    for (a_images, a_targets), (b_images, b_targets) in zip(parallel.take(3), serial.take(3)):
        np.testing.assert_array_equal(a_images.numpy(), b_images.numpy())
        for key in a_targets:
            np.testing.assert_array_equal(a_targets[key].numpy(), b_targets[key].numpy())
    other = build_panoptic_dataset(synthetic_tfrecords, **{**kwargs, "seed": 6})
    assert not np.array_equal(_first(other)[0], _first(parallel)[0])


def test_evaluation_keeps_whole_images(synthetic_tfrecords):
    spec = get_dataset_spec("synthetic")
    void = spec.ignore_label * spec.label_divisor
    dataset = build_panoptic_dataset(synthetic_tfrecords, "val", training=False, batch_size=2)
    batches = list(dataset)
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]  # no drop, no repeat
    ids = []
    for images, targets in batches:
        height, width = images.shape[1:3]
        assert (height - 1) % 16 == 0 and (width - 1) % 16 == 0
        for b, (h, w) in enumerate(targets["image_size"].numpy()):
            panoptic = targets["panoptic"][b].numpy()
            assert (panoptic[:h, :w] != void).mean() > 0.5
            assert (panoptic[h:] == void).all() and (panoptic[:, w:] == void).all()
            assert (images[b, h:].numpy() == 127.5).all()
            assert (targets["semantic_weights"][b, h:].numpy() == 0).all()
        ids += [i.decode() for i in targets["image_id"].numpy()]
    assert ids == ["0", "1", "2", "3", "4"]

    fixed = build_panoptic_dataset(synthetic_tfrecords, "val", training=False, batch_size=5,
                                   eval_size=(177, 193), include_image_id=False)
    images, targets = next(iter(fixed))
    assert images.shape == (5, 177, 193, 3) and "image_id" not in targets
    too_small = build_panoptic_dataset(synthetic_tfrecords, "val", training=False, batch_size=1,
                                       eval_size=(33, 33))
    with pytest.raises(tf.errors.InvalidArgumentError, match="larger than eval_size"):
        next(iter(too_small))


def test_input_context_shards_files_and_splits_the_global_batch(synthetic_tfrecords):
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2
        )
        dataset_fn = panoptic_dataset_fn(synthetic_tfrecords, "val", training=False)
        dataset = dataset_fn(input_context=context, batch_size=2)  # per-replica batch size
        batches = list(dataset)
        assert max(b[0].shape[0] for b in batches) == 2
        seen.append({i.decode() for b in batches for i in b[1]["image_id"].numpy()})
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 5

    with pytest.raises(ValueError, match="no split 'test'"):
        build_panoptic_dataset(synthetic_tfrecords, "test")
    with pytest.raises(ValueError, match="crop_size"):
        build_panoptic_dataset(synthetic_tfrecords, crop_size=(64,))


def test_distribute_datasets_from_function_with_two_replicas(synthetic_tfrecords):
    # A strategy with two replicas runs in its own process (see the team brief).
    code = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from keras_axial.data import panoptic_dataset_fn
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        dataset_fn = panoptic_dataset_fn({str(synthetic_tfrecords)!r}, crop_size=(33, 49))
        dataset = strategy.distribute_datasets_from_function(
            lambda context: dataset_fn(context, batch_size=3, seed=0))
        images, targets = next(iter(dataset))
        shapes = [tuple(t.shape) for t in strategy.experimental_local_results(images)]
        print("SHAPES", shapes)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert "SHAPES [(3, 33, 49, 3), (3, 33, 49, 3)]" in result.stdout, result.stderr[-2000:]

"""tf.data pipelines for panoptic training and evaluation from keras-axial TFRecords.

Training elements are `(images, targets)`:

- `images`: float32 `[B, crop_h, crop_w, 3]` in 0..255 (the model normalises).
- `targets`: `"semantic"` int32 `[B, H, W]`, `"semantic_weights"` float32 `[B, H, W]`,
  `"center_heatmap"` float32 `[B, H, W, 1]`, `"center_weights"` float32 `[B, H, W]`,
  `"offsets"` float32 `[B, H, W, 2]` (dy, dx), `"offset_weights"` float32 `[B, H, W]`
  (`keras_axial.data.targets`).

Per image: decode -> (optional resize of the longest side) -> random scale -> random crop with
random padding (image padded with the mean pixel 127.5, label with void) -> random horizontal flip
-> photometric augmentation -> targets; then batching and prefetch.

Evaluation elements keep the whole image: each image is padded (bottom/right, same padding values)
to the next `16k + 1` size, or to `eval_size`; batches are padded to their largest image. Targets
are the training targets of the padded image plus:

- `"panoptic"`: int32 `[B, H, W]`, the label map (void in the padding);
- `"image_size"`: int32 `[B, 2]`, the `(height, width)` before padding (crop `[:h, :w]` to undo it);
- `"image_id"`: string `[B]`, the dataset's image id (only when `include_image_id=True`, the
  default; Keras' `fit`/`evaluate` do not accept string tensors, so pass `False` there).

Determinism: every random draw is a stateless op keyed by `(seed, input pipeline id, element
index)`, so the augmentation of an element does not depend on parallelism; the file and example
shuffles are seeded `tf.data` shuffles (their order also depends on TensorFlow's global seed, which
`keras.utils.set_random_seed` sets).

Distribution: pass the `tf.distribute.InputContext` that
`strategy.distribute_datasets_from_function` gives (or use `panoptic_dataset_fn`). `batch_size`
is then the **global** batch size; each input pipeline batches
`input_context.get_per_replica_batch_size(batch_size)` and reads its own subset of the shard files
(or of the examples, when there are fewer files than pipelines). Without an input context,
`batch_size` is the batch size of the dataset.
"""

import random

import tensorflow as tf

from keras_axial.data import augmentation
from keras_axial.data import tfrecord
from keras_axial.data.targets import generate_panoptic_targets

TARGET_KEYS = (
    "semantic",
    "semantic_weights",
    "center_heatmap",
    "center_weights",
    "offsets",
    "offset_weights",
)


def next_16k_plus_1(size):
    """Smallest `16 k + 1 >= size` (TF op on int32 tensors)."""
    return (size - 1 + 15) // 16 * 16 + 1


def _check_size(name, size):
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, int) and v > 0 for v in size)
    ):
        raise ValueError(f"`{name}` must be (height, width) positive ints. Received: {size!r}")
    return tuple(size)


def _files_for_pipeline(files, input_context):
    """File dataset for this input pipeline, and whether elements still need sharding."""
    shard_elements = False
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) >= input_context.num_input_pipelines:
            files = files[input_context.input_pipeline_id :: input_context.num_input_pipelines]
        else:
            shard_elements = True
    dataset = tf.data.Dataset.from_tensor_slices(files)
    return dataset, shard_elements, len(files)


def build_panoptic_dataset(
    data_dir,
    split="train",
    *,
    training=True,
    batch_size=8,
    crop_size=(513, 513),
    min_scale=0.5,
    max_scale=2.0,
    scale_step=0.1,
    resize_longest_side=None,
    flip_probability=0.5,
    photometric_num_ops=2,
    photometric_magnitude=0.2,
    photometric_probability=0.5,
    photometric_ops=augmentation.PHOTOMETRIC_OPS,
    center_sigma=8.0,
    small_instance_area=4096,
    small_instance_weight=3.0,
    eval_size=None,
    include_image_id=True,
    seed=None,
    shuffle_buffer_size=512,
    repeat=None,
    drop_remainder=None,
    cache=False,
    input_context=None,
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=tf.data.AUTOTUNE,
):
    """Builds the panoptic training or evaluation `tf.data.Dataset` of a converted dataset.

    Args:
        data_dir: folder written by a keras-axial converter (TFRecords + `dataset_spec.json`).
        split: split name. Defaults to `"train"`.
        training: augment, shuffle and repeat (`True`, default) or keep whole images in order.
        batch_size: global batch size with `input_context`, else the batch size. Defaults to `8`.
        crop_size: training crop `(height, width)`. Defaults to `(513, 513)`.
        min_scale: defaults to `0.5`.
        max_scale: defaults to `2.0`.
        scale_step: defaults to `0.1` (`0`: continuous).
        resize_longest_side: resize each image (and its label, nearest neighbour) so that its
            longest side has this length, before random scaling in training and before padding
            in evaluation (deeplab2's COCO recipe; evaluation then scores the resized labels).
            Defaults to `None` (no resize).
        flip_probability: defaults to `0.5`.
        photometric_num_ops: ops drawn per image (0 disables). Defaults to `2`.
        photometric_magnitude: defaults to `0.2`.
        photometric_probability: defaults to `0.5`.
        photometric_ops: defaults to `augmentation.PHOTOMETRIC_OPS`.
        center_sigma: defaults to `8.0`.
        small_instance_area: defaults to `4096`.
        small_instance_weight: defaults to `3.0`.
        eval_size: evaluation `(height, width)` to pad every image to. Defaults to `None`: each
            image is padded to the next `16k + 1` size.
        include_image_id: evaluation targets carry `"image_id"`. Defaults to `True`.
        seed: base seed. Defaults to `None` (a random seed drawn once).
        shuffle_buffer_size: training example shuffle buffer (of serialized records, or of
            decoded examples with `cache=True`). Defaults to `512`.
        repeat: repeat forever. Defaults to `training`.
        drop_remainder: drop the last partial batch. Defaults to `training`.
        cache: keep decoded examples in memory (small datasets). Defaults to `False`.
        input_context: a `tf.distribute.InputContext`. Defaults to `None`.
        num_parallel_calls: defaults to `tf.data.AUTOTUNE`.
        prefetch: prefetch buffer (`0` disables). Defaults to `tf.data.AUTOTUNE`.

    Returns:
        A `tf.data.Dataset` of `(images, targets)`; see the module docstring.

    Example:
        >>> dataset = build_panoptic_dataset("/data/coco_tfrecords", "train", batch_size=16,
        ...                                  crop_size=(641, 641), seed=0)
        >>> model.fit(dataset, steps_per_epoch=1000)
    """
    spec, _ = tfrecord.read_dataset_info(data_dir)
    files = tfrecord.split_files(data_dir, split)
    crop_size = _check_size("crop_size", crop_size)
    if eval_size is not None:
        eval_size = _check_size("eval_size", eval_size)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    augmentation.scale_factors(min_scale, max_scale, scale_step)  # validates
    if photometric_num_ops:
        augmentation.validate_photometric_ops(photometric_ops)
    repeat = training if repeat is None else repeat
    drop_remainder = training if drop_remainder is None else drop_remainder
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    pipeline_id = 0
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        pipeline_id = input_context.input_pipeline_id
    void = spec.ignore_label * spec.label_divisor
    base_seed = tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0], tf.int64), pipeline_id
    )

    def make_targets(panoptic):
        return generate_panoptic_targets(
            panoptic,
            thing_class_ids=spec.thing_class_ids,
            label_divisor=spec.label_divisor,
            ignore_label=spec.ignore_label,
            sigma=center_sigma,
            small_instance_area=small_instance_area,
            small_instance_weight=small_instance_weight,
        )

    # The map functions use TF control flow only: skipping AutoGraph makes tracing much faster.
    @tf.autograph.experimental.do_not_convert
    def train_map(index, example):
        element_seed = tf.random.experimental.stateless_fold_in(base_seed, index)
        scale_seed, crop_seed, flip_seed, photo_seed = augmentation.split_seed(element_seed, 4)
        image = tf.cast(example["image"], tf.float32)
        panoptic = example["panoptic"]
        if resize_longest_side:
            image, panoptic = augmentation.resize_longest_side(image, panoptic, resize_longest_side)
        image, panoptic = augmentation.random_scale(
            image, panoptic, scale_seed, min_scale, max_scale, scale_step
        )
        image, panoptic = augmentation.random_crop_and_pad(
            image, panoptic, crop_size, crop_seed, void
        )
        if flip_probability:
            image, panoptic = augmentation.random_horizontal_flip(
                image, panoptic, flip_seed, flip_probability
            )
        if photometric_num_ops:
            image = augmentation.photometric_augment(
                image, photo_seed, photometric_num_ops, photometric_magnitude,
                photometric_probability, photometric_ops,
            )
        return image, make_targets(panoptic)

    @tf.autograph.experimental.do_not_convert
    def eval_map(example):
        image = tf.cast(example["image"], tf.float32)
        panoptic = example["panoptic"]
        if resize_longest_side:
            image, panoptic = augmentation.resize_longest_side(image, panoptic, resize_longest_side)
        size = tf.shape(panoptic)
        if eval_size is None:
            padded = next_16k_plus_1(size)
        else:
            tf.debugging.assert_less_equal(
                size, tf.constant(eval_size),
                message=f"an evaluation image is larger than eval_size={eval_size}",
            )
            padded = tf.constant(eval_size)
        image, panoptic = augmentation.pad_to_size(image, panoptic, padded, void)
        targets = make_targets(panoptic)
        targets["panoptic"] = panoptic
        targets["image_size"] = size
        if include_image_id:
            targets["image_id"] = example["image_id"]
        return image, targets

    file_dataset, shard_elements, num_files = _files_for_pipeline(files, input_context)
    if training and num_files > 1:
        file_dataset = file_dataset.shuffle(num_files, seed=seed, reshuffle_each_iteration=True)
    parallel_reads = {"num_parallel_calls": min(num_files, 8), "deterministic": True}
    dataset = file_dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(num_files, 8),
        **(parallel_reads if num_parallel_calls else {}),
    )
    if shard_elements:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    # Shuffle the serialized records (small) rather than decoded images (megabytes each), unless
    # the decoded images are cached anyway.
    if training and not cache:
        dataset = dataset.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(tfrecord.parse_example, num_parallel_calls=num_parallel_calls)
    if cache:
        dataset = dataset.cache()
        if training:
            dataset = dataset.shuffle(
                shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True
            )
    if repeat:
        dataset = dataset.repeat()
    if training:
        dataset = dataset.enumerate().map(train_map, num_parallel_calls=num_parallel_calls)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:
        dataset = dataset.map(eval_map, num_parallel_calls=num_parallel_calls)
        padding = {key: tf.constant(0, tf.float32) for key in TARGET_KEYS}
        padding.update(
            semantic=tf.constant(spec.ignore_label, tf.int32),
            panoptic=tf.constant(void, tf.int32),
            image_size=tf.constant(0, tf.int32),
        )
        if include_image_id:
            padding["image_id"] = tf.constant("", tf.string)
        dataset = dataset.padded_batch(
            batch_size,
            padding_values=(tf.constant(augmentation.MEAN_PIXEL, tf.float32), padding),
            drop_remainder=drop_remainder,
        )
    if prefetch:
        dataset = dataset.prefetch(prefetch)
    return dataset


def panoptic_input_fn(input_context=None, batch_size=8, seed=None, *, data_dir, split="train",
                      **kwargs):
    """`build_panoptic_dataset` under the training loop's dataset-function contract.

    `keras_axial.training.train_and_evaluate` calls its `train_dataset_fn` / `eval_dataset_fn`
    as `fn(input_context=..., batch_size=..., seed=...)` with the **per-replica** batch size;
    gin files bind `data_dir`, `split`, `training` and any other argument of
    `build_panoptic_dataset` on this function (`train_dataset_fn = @train/panoptic_input_fn`).
    """
    replicas = input_context.num_replicas_in_sync if input_context is not None else 1
    return build_panoptic_dataset(
        data_dir, split, batch_size=batch_size * replicas, seed=seed,
        input_context=input_context, **kwargs,
    )


def panoptic_dataset_fn(data_dir, split="train", **kwargs):
    """`panoptic_input_fn` with its dataset arguments bound: `fn(input_context=None,
    batch_size=8, seed=None)` with a **per-replica** `batch_size`, for
    `strategy.distribute_datasets_from_function` or `train_and_evaluate` from Python.

    Example:
        >>> dataset_fn = panoptic_dataset_fn("/data/cityscapes_tfrecords", crop_size=(1025, 2049))
        >>> dataset = strategy.distribute_datasets_from_function(
        ...     lambda context: dataset_fn(context, batch_size=4, seed=0))
    """
    for name in ("input_context", "batch_size", "seed"):
        if name in kwargs:
            raise ValueError(
                f"panoptic_dataset_fn's function takes `{name}` when called; do not bind it."
            )

    def dataset_fn(input_context=None, batch_size=8, seed=None):
        return panoptic_input_fn(
            input_context, batch_size, seed, data_dir=data_dir, split=split, **kwargs
        )

    return dataset_fn

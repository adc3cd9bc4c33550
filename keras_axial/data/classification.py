"""ImageNet-style classification input: a folder of class sub-folders, or TFDS `imagenet2012`.

Elements are `(images, labels)`: float32 `[B, S, S, 3]` in 0..255 (the model normalises) and
int32 `[B]`. Training: random-resized crop (area 8%-100%, aspect ratio 3/4-4/3, as in the
Inception/SASA recipe) to `S x S` and a random horizontal flip. Evaluation: resize the shorter side
to `S / 0.875` (256 for 224) and take the central `S x S` crop.

Randomness is stateless and keyed by `(seed, input pipeline id, element index)`, as in
`keras_axial.data.panoptic_pipeline`; sharding under `tf.distribute` is by file (one file per image
for folders; TFDS shards files through its `ReadConfig(input_context=...)`), and `batch_size` with
an `input_context` is the global batch size (`classification_input_fn` takes the per-replica batch
size, as the training loop calls it).
"""

import os
import random

import tensorflow as tf

from keras_axial.data import augmentation

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def list_image_folder(directory, class_names=None):
    """`(files, labels, class_names)` of `directory/<class>/<image>`, classes sorted by name.

    Args:
        directory: the split folder (e.g. `imagenet/train`).
        class_names: fix the class order (e.g. the train split's, for the val split). Defaults to
            `None`: the sorted sub-folder names.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Image folder {directory!r} does not exist.")
    found = sorted(e.name for e in os.scandir(directory) if e.is_dir())
    if class_names is None:
        class_names = found
    missing = sorted(set(class_names) - set(found))
    if missing:
        raise ValueError(f"Image folder {directory!r} lacks class folders {missing[:10]}.")
    if not class_names:
        raise ValueError(
            f"Image folder {directory!r} has no class sub-folder; expected "
            "<folder>/<class name>/<image file>."
        )
    files, labels = [], []
    for label, name in enumerate(class_names):
        class_files = sorted(
            f for f in os.listdir(os.path.join(directory, name))
            if f.lower().endswith(IMAGE_EXTENSIONS)
        )
        files += [os.path.join(directory, name, f) for f in class_files]
        labels += [label] * len(class_files)
    if not files:
        kinds = ", ".join(IMAGE_EXTENSIONS)
        raise ValueError(f"Image folder {directory!r} has no image ({kinds}).")
    return files, labels, list(class_names)


def random_resized_crop(image, seed, image_size, area_range=(0.08, 1.0),
                        aspect_ratio_range=(3 / 4, 4 / 3)):
    """Random crop covering `area_range` of the image with `aspect_ratio_range`, resized.

    Falls back to the whole image when no crop is found in 10 attempts.
    """
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=area_range[0],
        aspect_ratio_range=aspect_ratio_range,
        area_range=area_range,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, size)
    return tf.image.resize(tf.cast(crop, tf.float32), [image_size, image_size], "bilinear")


def center_crop(image, image_size, crop_fraction=0.875):
    """Resize the shorter side to `image_size / crop_fraction`, then the central square."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (image_size / crop_fraction) / tf.reduce_min(shape)
    resized_shape = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), image_size)
    image = tf.image.resize(tf.cast(image, tf.float32), resized_shape, "bilinear")
    offset = (resized_shape - image_size) // 2
    return tf.slice(image, [offset[0], offset[1], 0], [image_size, image_size, 3])


def _finish(dataset, *, training, batch_size, image_size, seed, input_context, repeat,
            drop_remainder, shuffle_buffer_size, area_range, aspect_ratio_range, flip_probability,
            eval_crop_fraction, num_parallel_calls, prefetch, decode):
    """Shared tail: shuffle, repeat, preprocess (`decode(element) -> (uint8 image, label)`)."""
    pipeline_id = input_context.input_pipeline_id if input_context is not None else 0
    base_seed = tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 1], tf.int64), pipeline_id
    )

    @tf.autograph.experimental.do_not_convert
    def train_map(index, element):
        crop_seed, flip_seed = augmentation.split_seed(
            tf.random.experimental.stateless_fold_in(base_seed, index), 2
        )
        image, label = decode(element)
        image = random_resized_crop(image, crop_seed, image_size, area_range, aspect_ratio_range)
        flip = tf.random.stateless_uniform([], flip_seed) < flip_probability
        image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
        return tf.ensure_shape(image, [image_size, image_size, 3]), label

    @tf.autograph.experimental.do_not_convert
    def eval_map(*element):
        # `map` spreads a tuple element over the arguments; a dict element comes alone.
        image, label = decode(element if len(element) > 1 else element[0])
        image = center_crop(image, image_size, eval_crop_fraction)
        return tf.ensure_shape(image, [image_size, image_size, 3]), label

    if training:
        dataset = dataset.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if training:
        dataset = dataset.enumerate().map(train_map, num_parallel_calls=num_parallel_calls)
    else:
        dataset = dataset.map(eval_map, num_parallel_calls=num_parallel_calls)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(prefetch) if prefetch else dataset


def _check_common(batch_size, image_size, eval_crop_fraction):
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"`image_size` must be an int >= 1. Received: image_size={image_size!r}")
    if not 0 < eval_crop_fraction <= 1:
        raise ValueError(
            f"`eval_crop_fraction` must be in (0, 1]. Received: {eval_crop_fraction!r}"
        )


def build_image_folder_dataset(
    directory,
    *,
    training=True,
    batch_size=32,
    image_size=224,
    class_names=None,
    area_range=(0.08, 1.0),
    aspect_ratio_range=(3 / 4, 4 / 3),
    flip_probability=0.5,
    eval_crop_fraction=0.875,
    seed=None,
    shuffle_buffer_size=None,
    repeat=None,
    drop_remainder=None,
    input_context=None,
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=tf.data.AUTOTUNE,
):
    """Classification dataset from `directory/<class>/<image>`.

    Args:
        directory: the split folder.
        training: augment, shuffle and repeat. Defaults to `True`.
        batch_size: global batch size with `input_context`, else the batch size. Defaults to `32`.
        image_size: output side `S`. Defaults to `224`.
        class_names: class order (label = index). Defaults to `None`: sorted folder names.
        area_range: random-resized-crop area fraction. Defaults to `(0.08, 1.0)`.
        aspect_ratio_range: defaults to `(3/4, 4/3)`.
        flip_probability: defaults to `0.5`.
        eval_crop_fraction: defaults to `0.875`.
        seed: defaults to `None` (random).
        shuffle_buffer_size: defaults to `None`: the whole (cheap) list of file names.
        repeat: defaults to `training`.
        drop_remainder: defaults to `training`.
        input_context: a `tf.distribute.InputContext`. Defaults to `None`.
        num_parallel_calls: defaults to `tf.data.AUTOTUNE`.
        prefetch: defaults to `tf.data.AUTOTUNE`.

    Returns:
        A `tf.data.Dataset` of `(images, labels)`.

    Example:
        >>> dataset = build_image_folder_dataset("/data/imagenet/train", batch_size=256, seed=0)
    """
    _check_common(batch_size, image_size, eval_crop_fraction)
    files, labels, _ = list_image_folder(directory, class_names)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        files = files[input_context.input_pipeline_id :: input_context.num_input_pipelines]
        labels = labels[input_context.input_pipeline_id :: input_context.num_input_pipelines]
    dataset = tf.data.Dataset.from_tensor_slices((files, tf.constant(labels, tf.int32)))

    def decode(element):
        path, label = element
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return image, label

    return _finish(
        dataset, training=training, batch_size=batch_size, image_size=image_size,
        seed=random.SystemRandom().randrange(2**31) if seed is None else seed,
        input_context=input_context, repeat=training if repeat is None else repeat,
        drop_remainder=training if drop_remainder is None else drop_remainder,
        shuffle_buffer_size=shuffle_buffer_size or len(files), area_range=area_range,
        aspect_ratio_range=aspect_ratio_range, flip_probability=flip_probability,
        eval_crop_fraction=eval_crop_fraction, num_parallel_calls=num_parallel_calls,
        prefetch=prefetch, decode=decode,
    )


def build_imagenet_tfds_dataset(
    split="train",
    *,
    name="imagenet2012",
    data_dir=None,
    training=True,
    batch_size=32,
    image_size=224,
    area_range=(0.08, 1.0),
    aspect_ratio_range=(3 / 4, 4 / 3),
    flip_probability=0.5,
    eval_crop_fraction=0.875,
    seed=None,
    shuffle_buffer_size=10_000,
    repeat=None,
    drop_remainder=None,
    input_context=None,
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=tf.data.AUTOTUNE,
):
    """Classification dataset from a prepared TFDS dataset (`imagenet2012` by default).

    Needs `tensorflow-datasets` and the dataset already prepared in `data_dir` (ImageNet must be
    downloaded by hand: `tfds build imagenet2012 --manual_dir=...`). The other arguments are those
    of `build_image_folder_dataset`.

    Args:
        split: TFDS split, e.g. `"train"`, `"validation"`. Defaults to `"train"`.
        name: TFDS dataset name. Defaults to `"imagenet2012"`.
        data_dir: TFDS data folder. Defaults to `None` (TFDS' default, `~/tensorflow_datasets`).

    Returns:
        A `tf.data.Dataset` of `(images, labels)`.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ImportError(
            "Reading TFDS datasets needs `pip install tensorflow-datasets` and the dataset "
            f"prepared (`tfds build {name} --manual_dir=<folder with the ImageNet tars>`). "
            "Or use build_image_folder_dataset on an <split>/<class>/<image> folder."
        ) from None
    _check_common(batch_size, image_size, eval_crop_fraction)
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    builder = tfds.builder(name, data_dir=data_dir)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=training,
        read_config=tfds.ReadConfig(input_context=input_context, shuffle_seed=seed),
    )

    def decode(element):
        return element["image"], tf.cast(element["label"], tf.int32)

    return _finish(
        dataset, training=training, batch_size=batch_size, image_size=image_size, seed=seed,
        input_context=input_context, repeat=training if repeat is None else repeat,
        drop_remainder=training if drop_remainder is None else drop_remainder,
        shuffle_buffer_size=shuffle_buffer_size, area_range=area_range,
        aspect_ratio_range=aspect_ratio_range, flip_probability=flip_probability,
        eval_crop_fraction=eval_crop_fraction, num_parallel_calls=num_parallel_calls,
        prefetch=prefetch, decode=decode,
    )


def build_classification_dataset(source, split=None, **kwargs):
    """`build_image_folder_dataset(source, ...)` for a folder, else TFDS dataset `source`.

    Args:
        source: an image folder path, or `"tfds:<name>"` (e.g. `"tfds:imagenet2012"`).
        split: TFDS split (ignored for folders). Defaults to `"train"` for TFDS.
        **kwargs: the builders' other arguments.
    """
    if isinstance(source, str) and source.startswith("tfds:"):
        return build_imagenet_tfds_dataset(split or "train", name=source[5:], **kwargs)
    return build_image_folder_dataset(source, **kwargs)


def classification_input_fn(input_context=None, batch_size=32, seed=None, *, source,
                            split=None, **kwargs):
    """`build_classification_dataset` under the training loop's dataset-function contract
    (`fn(input_context=..., batch_size=..., seed=...)`, `batch_size` **per replica**); gin files
    bind `source`, `split` and the builders' other arguments on this function.
    """
    replicas = input_context.num_replicas_in_sync if input_context is not None else 1
    return build_classification_dataset(
        source, split, batch_size=batch_size * replicas, seed=seed, input_context=input_context,
        **kwargs,
    )

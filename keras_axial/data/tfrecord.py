"""The keras-axial panoptic TFRecord format: schema, sharded writer and parser.

A converted dataset is a folder:

    data_dir/
      dataset_spec.json                  the `DatasetSpec` (classes, things, label_divisor, ignore)
      dataset_info.json                  {"format_version": 1, "splits": {split: {"num_examples",
                                          "files": [shard names]}}}
      train-00000-of-00004.tfrecord      shards, one `tf.train.Example` per image
      ...

so readers need no flags beyond the folder and the split name.

Each `tf.train.Example` has these features:

| key                 | type   | content                                                          |
|---------------------|--------|------------------------------------------------------------------|
| `image/encoded`     | bytes  | the image file (JPEG or PNG, kept byte for byte when possible)    |
| `image/format`      | bytes  | `"jpeg"` or `"png"`                                               |
| `image/height`      | int64  | image height in pixels                                            |
| `image/width`       | int64  | image width in pixels                                             |
| `image/id`          | bytes  | the dataset's image id (COCO's number, Cityscapes' name, ...)     |
| `image/filename`    | bytes  | the image's file name                                             |
| `panoptic/encoded`  | bytes  | RGB PNG of the label map in contiguous ids, lossless:            |
|                     |        | `class * label_divisor + instance = r + 256 g + 65536 b`          |
| `panoptic/format`   | bytes  | `"png_rgb24"`                                                     |

Crowd regions are part of the label map, not a separate feature: a crowd region is instance 0 of
its thing class (`class * label_divisor`), or void when the converter was told to treat crowd as
ignore (the COCO default). Void pixels are `ignore_label * label_divisor`.
"""

import io
import json
import math
import os
import pathlib

import numpy as np
import tensorflow as tf
from PIL import Image

from keras_axial.data.dataset_spec import DatasetSpec
from keras_axial.data.panoptic_format import segment_ids_to_rgb

FORMAT_VERSION = 1
SPEC_FILENAME = "dataset_spec.json"
INFO_FILENAME = "dataset_info.json"
PANOPTIC_FORMAT = "png_rgb24"

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/format": tf.io.FixedLenFeature([], tf.string),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/id": tf.io.FixedLenFeature([], tf.string),
    "image/filename": tf.io.FixedLenFeature([], tf.string),
    "panoptic/encoded": tf.io.FixedLenFeature([], tf.string),
    "panoptic/format": tf.io.FixedLenFeature([], tf.string),
}


def encode_panoptic_png(panoptic):
    """int `[H, W]` label map (values < 2**24) -> RGB PNG bytes."""
    panoptic = np.asarray(panoptic)
    if panoptic.ndim != 2 or panoptic.min(initial=0) < 0 or panoptic.max(initial=0) >= 2**24:
        raise ValueError(
            "A panoptic label map must be 2-D with values in [0, 2**24). "
            f"Received shape {panoptic.shape}, range [{panoptic.min()}, {panoptic.max()}]."
        )
    buffer = io.BytesIO()
    Image.fromarray(segment_ids_to_rgb(panoptic)).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_panoptic_png(encoded):
    """TF op: RGB PNG bytes -> int32 `[H, W]` label map."""
    rgb = tf.cast(tf.io.decode_png(encoded, channels=3), tf.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def make_example(example):
    """`panoptic_format.PanopticExample` -> serialized `tf.train.Example` bytes."""

    def _bytes(value):
        if isinstance(value, str):
            value = value.encode("utf-8")
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    features = {
        "image/encoded": _bytes(example.image_bytes),
        "image/format": _bytes(example.image_format),
        "image/height": _int(example.height),
        "image/width": _int(example.width),
        "image/id": _bytes(str(example.image_id)),
        "image/filename": _bytes(os.path.basename(example.image_path)),
        "panoptic/encoded": _bytes(encode_panoptic_png(example.panoptic)),
        "panoptic/format": _bytes(PANOPTIC_FORMAT),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


@tf.autograph.experimental.do_not_convert
def parse_example(serialized):
    """TF op: serialized example -> dict of decoded tensors.

    Returns:
        `{"image": uint8 [H, W, 3], "panoptic": int32 [H, W], "image_id": string,
        "filename": string, "height": int32, "width": int32}`.
    """
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    image = tf.io.decode_image(parsed["image/encoded"], channels=3, expand_animations=False)
    panoptic = decode_panoptic_png(parsed["panoptic/encoded"])
    return {
        "image": image,
        "panoptic": panoptic,
        "image_id": parsed["image/id"],
        "filename": parsed["image/filename"],
        "height": tf.cast(parsed["image/height"], tf.int32),
        "width": tf.cast(parsed["image/width"], tf.int32),
    }


def shard_name(split, index, num_shards):
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def default_num_shards(num_examples, examples_per_shard=256):
    """Shards of about `examples_per_shard` images (at least 1, at most 1024)."""
    return max(1, min(1024, math.ceil(num_examples / examples_per_shard)))


def read_dataset_info(data_dir):
    """Returns `(spec, info)` of a converted dataset folder; errors name the folder."""
    data_dir = os.fspath(data_dir)
    spec_path = os.path.join(data_dir, SPEC_FILENAME)
    info_path = os.path.join(data_dir, INFO_FILENAME)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"Dataset folder {data_dir!r} does not exist.")
    for path in (spec_path, info_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{data_dir!r} is not a converted keras-axial dataset: {os.path.basename(path)} "
                "is missing (convert it with python -m keras_axial.data.convert_coco, "
                "convert_cityscapes, convert_mapillary, convert_custom or synthetic)."
            )
    spec = DatasetSpec.load(spec_path)
    with open(info_path, encoding="utf-8") as handle:
        info = json.load(handle)
    if info.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{info_path!r} has format_version {info.get('format_version')!r}; this version of "
            f"keras-axial reads format_version {FORMAT_VERSION}."
        )
    return spec, info


def split_files(data_dir, split):
    """Shard paths of `split`, checked to exist; errors list the available splits."""
    _, info = read_dataset_info(data_dir)
    splits = info.get("splits", {})
    if split not in splits:
        raise ValueError(
            f"Dataset {os.fspath(data_dir)!r} has no split {split!r}. "
            f"Available splits: {sorted(splits)}"
        )
    files = [os.path.join(os.fspath(data_dir), name) for name in splits[split]["files"]]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise FileNotFoundError(f"Shards of split {split!r} are missing: {missing[:5]}")
    return files


def split_size(data_dir, split):
    """Number of examples in `split`."""
    _, info = read_dataset_info(data_dir)
    if split not in info.get("splits", {}):
        raise ValueError(f"Dataset {os.fspath(data_dir)!r} has no split {split!r}.")
    return int(info["splits"][split]["num_examples"])


def write_split(serialized_examples, output_dir, split, spec, num_examples, num_shards=None,
                verbose=True):
    """Writes serialized examples as sharded TFRecords of `split` in `output_dir`.

    Nothing half-written is left behind: shards are written under temporary names and renamed only
    after the last example was written; on any error (including one raised by the iterator, e.g. a
    broken input file) the temporary shards are deleted and the folder is as before. Converting a
    split again replaces that split only; other splits in the folder are kept. The folder's spec
    must match `spec`.

    Args:
        serialized_examples: iterable of `tf.train.Example` bytes (e.g. `make_example(...)`).
        output_dir: destination folder (created if missing).
        split: split name, e.g. `"train"`.
        spec: the `DatasetSpec` of the labels.
        num_examples: number of examples the iterable yields (for the progress bar and sharding).
        num_shards: defaults to `default_num_shards(num_examples)`.
        verbose: show a `keras.utils.Progbar`. Defaults to `True`.

    Returns:
        The list of shard paths.
    """
    import keras

    if not isinstance(split, str) or not split or "/" in split or "-" in split:
        raise ValueError(f"`split` must be a name without '/' or '-'. Received: split={split!r}")
    if num_examples < 1:
        raise ValueError(f"Split {split!r} is empty: there is nothing to write.")
    num_shards = num_shards or default_num_shards(num_examples)
    if not 1 <= num_shards <= num_examples:
        raise ValueError(
            f"`num_shards` must be in [1, num_examples={num_examples}]. Received: {num_shards}"
        )
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    spec_path = output_dir / SPEC_FILENAME
    if spec_path.exists() and DatasetSpec.load(spec_path) != spec:
        raise ValueError(
            f"{str(output_dir)!r} already holds a dataset with a different spec "
            f"({SPEC_FILENAME}); write to another folder."
        )

    names = [shard_name(split, i, num_shards) for i in range(num_shards)]
    temporary = [output_dir / f".{name}.tmp" for name in names]
    writers = [tf.io.TFRecordWriter(str(path)) for path in temporary]
    progress = keras.utils.Progbar(num_examples, unit_name="image") if verbose else None
    count = 0
    try:
        for serialized in serialized_examples:
            # Round robin keeps shards equally sized whatever the order of the inputs.
            writers[count % num_shards].write(serialized)
            count += 1
            if progress is not None:
                progress.update(count)
        if count != num_examples:
            raise ValueError(
                f"Split {split!r}: expected {num_examples} examples, the input yielded {count}."
            )
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            writer.close()
        for path in temporary:
            path.unlink(missing_ok=True)
        raise

    info_path = output_dir / INFO_FILENAME
    info = {"format_version": FORMAT_VERSION, "splits": {}}
    if info_path.exists():
        with open(info_path, encoding="utf-8") as handle:
            info = json.load(handle)
    stale = set(info["splits"].get(split, {}).get("files", [])) - set(names)
    for path, name in zip(temporary, names):
        os.replace(path, output_dir / name)
    info["splits"][split] = {"num_examples": count, "files": names}
    if not spec_path.exists():
        spec.save(spec_path)
    from keras_axial.utils.io import atomic_write

    with atomic_write(info_path, "w") as handle:
        json.dump(info, handle, indent=2)
    for name in stale:
        (output_dir / name).unlink(missing_ok=True)
    return [str(output_dir / name) for name in names]

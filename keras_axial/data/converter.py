"""The conversion loop shared by every panoptic converter: records -> checked examples -> shards.

Dataset-specific modules (`convert_coco`, `convert_cityscapes`, `convert_mapillary`,
`convert_custom`, `synthetic`) only find the files; this module reads, checks and writes them.
"""

import functools
import multiprocessing
import os

from keras_axial.data import panoptic_format
from keras_axial.data import tfrecord


def _serialize(record, class_of_category, spec, treat_crowd_as_ignore):
    example, problems = panoptic_format.load_example(
        record, class_of_category, spec, treat_crowd_as_ignore
    )
    if problems:
        return None, problems
    return tfrecord.make_example(example), []


def convert_panoptic_records(
    records,
    categories,
    spec,
    output_dir,
    split,
    *,
    treat_crowd_as_ignore,
    num_shards=None,
    num_workers=1,
    verbose=True,
    source="panoptic JSON",
):
    """Converts COCO-panoptic-format records to TFRecord shards of `split` in `output_dir`.

    Stops at the first broken input with a `DatasetError` naming the file and the reason; no shard
    of the split is left behind (see `tfrecord.write_split`).

    Args:
        records: list of `panoptic_format.PanopticRecord`.
        categories: the JSON `categories` list.
        spec: the `DatasetSpec` to express labels in.
        output_dir: destination folder.
        split: split name.
        treat_crowd_as_ignore: crowd segments become void (`True`) or instance 0 of their class.
        num_shards: defaults to about 256 images per shard.
        num_workers: processes reading and encoding images in parallel. Defaults to `1`.
        verbose: progress bar. Defaults to `True`.
        source: name of the JSON, for error messages.

    Returns:
        The list of shard paths.
    """
    if not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"`num_workers` must be an int >= 1. Received: {num_workers!r}")
    if not records:
        problem = panoptic_format.DatasetProblem(source, f"split {split!r} has no annotated image.")
        raise panoptic_format.DatasetError([problem])
    class_of_category = panoptic_format.category_to_class(categories, spec, source)
    work = functools.partial(
        _serialize,
        class_of_category=class_of_category,
        spec=spec,
        treat_crowd_as_ignore=treat_crowd_as_ignore,
    )

    def examples(results):
        for serialized, problems in results:
            if problems:
                raise panoptic_format.DatasetError(problems)
            yield serialized

    if num_workers == 1:
        return tfrecord.write_split(
            examples(map(work, records)), output_dir, split, spec, len(records), num_shards,
            verbose,
        )
    # Workers only read files and run NumPy/PIL; fork is cheap and keeps the parent's imports.
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with context.Pool(num_workers) as pool:
        results = pool.imap(work, records, chunksize=4)
        return tfrecord.write_split(
            examples(results), output_dir, split, spec, len(records), num_shards, verbose
        )


def image_in_folder(image_dir):
    """`image_path_fn` for datasets whose JSON `file_name` is relative to one image folder."""
    image_dir = os.fspath(image_dir)
    return lambda entry: os.path.join(image_dir, entry["file_name"])


def convert_coco_format(
    panoptic_json, label_dir, image_path_fn, spec, output_dir, split, **convert_kwargs
):
    """Reads a COCO-panoptic-format JSON and converts its images (`convert_panoptic_records`).

    Raises `DatasetError` for a malformed JSON (missing keys, annotations of unknown images, no
    annotation at all) before anything is written.
    """
    for path, what in ((panoptic_json, "panoptic JSON"), (label_dir, "panoptic PNG folder")):
        if not os.path.exists(path):
            raise FileNotFoundError(f"The {what} {os.fspath(path)!r} does not exist.")
    records, categories, problems = panoptic_format.read_records(
        panoptic_json, label_dir, image_path_fn
    )
    if problems:
        raise panoptic_format.DatasetError(problems)
    return convert_panoptic_records(
        records, categories, spec, output_dir, split, source=os.fspath(panoptic_json),
        **convert_kwargs,
    )


def define_common_flags(flag_values, *, crowd_as_ignore_default):
    """Flags every panoptic converter CLI has."""
    from absl import flags

    flags.DEFINE_string(
        "output_dir", None, "Folder for the TFRecord shards and dataset_spec.json.",
        flag_values=flag_values, required=True,
    )
    flags.DEFINE_integer(
        "num_shards", None, "Number of shards (default: about 256 images per shard).",
        flag_values=flag_values, lower_bound=1,
    )
    flags.DEFINE_integer(
        "num_workers", min(8, os.cpu_count() or 1), "Processes reading images in parallel.",
        flag_values=flag_values, lower_bound=1,
    )
    flags.DEFINE_bool(
        "treat_crowd_as_ignore", crowd_as_ignore_default,
        "Crowd segments become void; otherwise they keep their class with instance 0.",
        flag_values=flag_values,
    )


def run_converter(convert, **kwargs):
    """Runs a converter for a CLI: prints where the shards went, or the problems; returns rc."""
    import sys

    try:
        files = convert(**kwargs)
    except (panoptic_format.DatasetError, FileNotFoundError, ValueError) as error:
        print(f"Conversion failed, nothing was written:\n{error}", file=sys.stderr)
        return 1
    print(f"Wrote {len(files)} shard(s) to {os.path.dirname(files[0])}")
    return 0

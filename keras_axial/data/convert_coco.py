"""COCO panoptic -> keras-axial TFRecords.

    python -m keras_axial.data.convert_coco --coco_root=/data/coco --split=val2017 \
        --output_dir=/data/coco_tfrecords

reads `annotations/panoptic_val2017.json`, the PNGs in `annotations/panoptic_val2017/` and the
images in `val2017/` (each path can be given explicitly instead) and writes split `val` (the split
name without its year). The 133 categories map to contiguous ids 0..132 (80 things first), crowd
segments become void (`--notreat_crowd_as_ignore` keeps them as instance 0 of their class), the
label divisor is 256 (`keras_axial.data.get_dataset_spec("coco")`).
"""

import os
import re
import sys

from keras_axial.data import converter
from keras_axial.data.dataset_spec import get_dataset_spec


def coco_paths(coco_root=None, split="train2017", panoptic_json=None, label_dir=None,
               image_dir=None):
    """Resolves the COCO panoptic files of `split`: `(panoptic_json, label_dir, image_dir)`."""
    if coco_root is None and None in (panoptic_json, label_dir, image_dir):
        raise ValueError(
            "Give `coco_root` (with `split`), or all of `panoptic_json`, `label_dir` and "
            "`image_dir`."
        )
    if coco_root is not None:
        coco_root = os.fspath(coco_root)
        panoptic_json = panoptic_json or os.path.join(
            coco_root, "annotations", f"panoptic_{split}.json"
        )
        label_dir = label_dir or os.path.join(coco_root, "annotations", f"panoptic_{split}")
        image_dir = image_dir or os.path.join(coco_root, split)
    return panoptic_json, label_dir, image_dir


def convert_coco_panoptic(
    output_dir,
    *,
    coco_root=None,
    split="train2017",
    output_split=None,
    panoptic_json=None,
    label_dir=None,
    image_dir=None,
    spec="coco",
    treat_crowd_as_ignore=True,
    num_shards=None,
    num_workers=1,
    verbose=True,
):
    """Converts a COCO panoptic split to TFRecords.

    Args:
        output_dir: destination folder.
        coco_root: COCO folder with `annotations/` and the image folders. Defaults to `None`
            (then give the three paths below).
        split: COCO split, e.g. `"val2017"`. Defaults to `"train2017"`.
        output_split: name of the written split. Defaults to `split` without digits (`"val"`).
        panoptic_json, label_dir, image_dir: explicit paths, overriding those under `coco_root`.
        spec: `DatasetSpec` or registered name. Defaults to `"coco"`.
        treat_crowd_as_ignore: crowd -> void. Defaults to `True` (deeplab2's COCO convention).
        num_shards: defaults to about 256 images per shard.
        num_workers: parallel reader processes. Defaults to `1`.
        verbose: progress bar. Defaults to `True`.

    Returns:
        The list of shard paths.
    """
    panoptic_json, label_dir, image_dir = coco_paths(
        coco_root, split, panoptic_json, label_dir, image_dir
    )
    output_split = output_split or (re.sub(r"\d+", "", split) or split)
    return converter.convert_coco_format(
        panoptic_json, label_dir, converter.image_in_folder(image_dir), get_dataset_spec(spec),
        output_dir, output_split, treat_crowd_as_ignore=treat_crowd_as_ignore,
        num_shards=num_shards, num_workers=num_workers, verbose=verbose,
    )


def _define_flags(flag_values):
    from absl import flags

    flags.DEFINE_string("coco_root", None, "COCO folder.", flag_values=flag_values)
    flags.DEFINE_string("split", "train2017", "COCO split name.", flag_values=flag_values)
    flags.DEFINE_string(
        "output_split", None, "Written split name (default: split without digits).",
        flag_values=flag_values,
    )
    flags.DEFINE_string("panoptic_json", None, "Panoptic JSON path.", flag_values=flag_values)
    flags.DEFINE_string("label_dir", None, "Panoptic PNG folder.", flag_values=flag_values)
    flags.DEFINE_string("image_dir", None, "Image folder.", flag_values=flag_values)
    converter.define_common_flags(flag_values, crowd_as_ignore_default=True)


def main(argv=None):
    from keras_axial.data._cli import parse_flags

    f = parse_flags(argv, _define_flags, __doc__)
    return converter.run_converter(
        convert_coco_panoptic, output_dir=f.output_dir, coco_root=f.coco_root, split=f.split,
        output_split=f.output_split, panoptic_json=f.panoptic_json, label_dir=f.label_dir,
        image_dir=f.image_dir, treat_crowd_as_ignore=f.treat_crowd_as_ignore,
        num_shards=f.num_shards, num_workers=f.num_workers,
    )


if __name__ == "__main__":
    sys.exit(main())

"""Mapillary Vistas (v1.2) panoptic -> keras-axial TFRecords.

    python -m keras_axial.data.convert_mapillary --mapillary_root=/data/mapillary \
        --split=validation --output_dir=/data/mapillary_tfrecords

reads `validation/panoptic/panoptic_2018.json`, the PNGs in `validation/panoptic/` and the images in
`validation/images/` (COCO panoptic format) and writes split `val` (`training` -> `train`). The 65
evaluated categories map to contiguous ids 0..64 in the JSON's id order (37 things), void is 255
and the label divisor 1000 (`get_dataset_spec("mapillary_vistas")`). Crowd keeps its class as
instance 0 unless `--treat_crowd_as_ignore`.
"""

import os
import sys

from keras_axial.data import converter
from keras_axial.data.dataset_spec import get_dataset_spec

_OUTPUT_SPLITS = {"training": "train", "validation": "val", "testing": "test"}


def mapillary_paths(mapillary_root, split="training"):
    """`(panoptic_json, label_dir, image_dir)` of a Mapillary Vistas split."""
    split_dir = os.path.join(os.fspath(mapillary_root), split)
    panoptic_dir = os.path.join(split_dir, "panoptic")
    return (
        os.path.join(panoptic_dir, "panoptic_2018.json"),
        panoptic_dir,
        os.path.join(split_dir, "images"),
    )


def convert_mapillary_panoptic(
    output_dir,
    *,
    mapillary_root,
    split="training",
    output_split=None,
    spec="mapillary_vistas",
    treat_crowd_as_ignore=False,
    num_shards=None,
    num_workers=1,
    verbose=True,
):
    """Converts a Mapillary Vistas panoptic split (`"training"`, `"validation"`) to TFRecords.

    Args:
        output_dir: destination folder.
        mapillary_root: the Mapillary Vistas folder (with `training/` and `validation/`).
        split: defaults to `"training"`.
        output_split: defaults to `"train"` / `"val"` for `"training"` / `"validation"`.
        spec: defaults to `"mapillary_vistas"`.
        treat_crowd_as_ignore: defaults to `False`.
        num_shards, num_workers, verbose: see `convert_coco_panoptic`.

    Returns:
        The list of shard paths.
    """
    panoptic_json, label_dir, image_dir = mapillary_paths(mapillary_root, split)
    return converter.convert_coco_format(
        panoptic_json, label_dir, converter.image_in_folder(image_dir), get_dataset_spec(spec),
        output_dir, output_split or _OUTPUT_SPLITS.get(split, split),
        treat_crowd_as_ignore=treat_crowd_as_ignore, num_shards=num_shards,
        num_workers=num_workers, verbose=verbose,
    )


def _define_flags(flag_values):
    from absl import flags

    flags.DEFINE_string(
        "mapillary_root", None, "Mapillary Vistas folder.", flag_values=flag_values, required=True
    )
    flags.DEFINE_string("split", "training", "training or validation.", flag_values=flag_values)
    flags.DEFINE_string("output_split", None, "Written split name.", flag_values=flag_values)
    converter.define_common_flags(flag_values, crowd_as_ignore_default=False)


def main(argv=None):
    from keras_axial.data._cli import parse_flags

    f = parse_flags(argv, _define_flags, __doc__)
    return converter.run_converter(
        convert_mapillary_panoptic, output_dir=f.output_dir, mapillary_root=f.mapillary_root,
        split=f.split, output_split=f.output_split, treat_crowd_as_ignore=f.treat_crowd_as_ignore,
        num_shards=f.num_shards, num_workers=f.num_workers,
    )


if __name__ == "__main__":
    sys.exit(main())

"""Cityscapes panoptic -> keras-axial TFRecords.

    python -m keras_axial.data.convert_cityscapes --cityscapes_root=/data/cityscapes --split=val \
        --output_dir=/data/cityscapes_tfrecords

reads what cityscapesScripts' `createPanopticImgs.py` writes: `gtFine/cityscapes_panoptic_val.json`
and the `*_gtFine_panoptic.png` files in `gtFine/cityscapes_panoptic_val/` (or the `_trainId`
variants made with `--use-train-id`, found automatically), and the images
`leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png`. Categories are the 19 evaluated
classes (label ids 7..33 or train ids 0..18, matched by name) mapped to train ids 0..18 (things
11..18); void is 255 and the label divisor 1000 (`get_dataset_spec("cityscapes")`). Crowd segments
(`iscrowd`, the instance-less regions of thing classes) keep their class as instance 0, as
Panoptic-DeepLab does for Cityscapes; `--treat_crowd_as_ignore` makes them void instead.
"""

import os
import sys

from keras_axial.data import converter
from keras_axial.data.dataset_spec import get_dataset_spec


def cityscapes_paths(cityscapes_root, split="train"):
    """`(panoptic_json, label_dir, image_path_fn)` of a Cityscapes split."""
    root = os.fspath(cityscapes_root)
    gt_dir = os.path.join(root, "gtFine")
    for suffix in ("", "_trainId"):
        name = f"cityscapes_panoptic_{split}{suffix}"
        if os.path.isfile(os.path.join(gt_dir, name + ".json")):
            break
    else:
        raise FileNotFoundError(
            f"Neither {os.path.join(gt_dir, f'cityscapes_panoptic_{split}.json')!r} nor its "
            "'_trainId' variant exists; create them with cityscapesScripts' "
            "createPanopticImgs.py."
        )
    image_root = os.path.join(root, "leftImg8bit", split)

    def image_path(entry):
        # Cityscapes names start with the city, which is also the image's sub-folder.
        file_name = entry["file_name"]
        return os.path.join(image_root, file_name.split("_")[0], file_name)

    return os.path.join(gt_dir, name + ".json"), os.path.join(gt_dir, name), image_path


def convert_cityscapes_panoptic(
    output_dir,
    *,
    cityscapes_root,
    split="train",
    spec="cityscapes",
    treat_crowd_as_ignore=False,
    num_shards=None,
    num_workers=1,
    verbose=True,
):
    """Converts a Cityscapes panoptic split (`"train"`, `"val"`) to TFRecords.

    Args:
        output_dir: destination folder.
        cityscapes_root: folder with `gtFine/` and `leftImg8bit/`.
        split: defaults to `"train"`.
        spec: defaults to `"cityscapes"`.
        treat_crowd_as_ignore: defaults to `False` (crowd keeps its semantic class).
        num_shards, num_workers, verbose: see `convert_coco_panoptic`.

    Returns:
        The list of shard paths.
    """
    panoptic_json, label_dir, image_path = cityscapes_paths(cityscapes_root, split)
    return converter.convert_coco_format(
        panoptic_json, label_dir, image_path, get_dataset_spec(spec), output_dir, split,
        treat_crowd_as_ignore=treat_crowd_as_ignore, num_shards=num_shards,
        num_workers=num_workers, verbose=verbose,
    )


def _define_flags(flag_values):
    from absl import flags

    flags.DEFINE_string(
        "cityscapes_root", None, "Folder with gtFine/ and leftImg8bit/.", flag_values=flag_values,
        required=True,
    )
    flags.DEFINE_string("split", "train", "train, val or test.", flag_values=flag_values)
    converter.define_common_flags(flag_values, crowd_as_ignore_default=False)


def main(argv=None):
    from keras_axial.data._cli import parse_flags

    f = parse_flags(argv, _define_flags, __doc__)
    return converter.run_converter(
        convert_cityscapes_panoptic, output_dir=f.output_dir, cityscapes_root=f.cityscapes_root,
        split=f.split, treat_crowd_as_ignore=f.treat_crowd_as_ignore, num_shards=f.num_shards,
        num_workers=f.num_workers,
    )


if __name__ == "__main__":
    sys.exit(main())

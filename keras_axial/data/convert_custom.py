"""Your own panoptic dataset (COCO panoptic format) -> keras-axial TFRecords.

    python -m keras_axial.data.convert_custom --panoptic_json=labels/panoptic_train.json \
        --label_dir=labels/panoptic_train --image_dir=images/train --split=train \
        --output_dir=/data/my_tfrecords [--spec=my_spec.json | --name=my_dataset]

The dataset is described by a `DatasetSpec`: pass a JSON file written by `DatasetSpec.save` (or a
registered name) with `--spec`, or let the converter build one from the JSON `categories` (in their
order; `isthing` flags; `--name`, `--label_divisor`, `--ignore_label`). The labels need the COCO
panoptic format: per image one RGB PNG of segment ids (`r + 256 g + 65536 b`, 0 = void) and an
annotation listing its segments (`id`, `category_id`, `iscrowd`).
"""

import sys

from keras_axial.data import converter
from keras_axial.data import panoptic_format
from keras_axial.data.dataset_spec import DatasetSpec
from keras_axial.data.dataset_spec import get_dataset_spec


def spec_from_panoptic_json(panoptic_json, name, label_divisor=256, ignore_label=255):
    """A `DatasetSpec` made from the `categories` of a COCO panoptic JSON (path or dict)."""
    data = panoptic_json
    if not isinstance(data, dict):
        data = panoptic_format.load_json(panoptic_json)
    return DatasetSpec.from_coco_categories(
        data.get("categories", []), name=name, label_divisor=label_divisor,
        ignore_label=ignore_label,
    )


def convert_custom_panoptic(
    output_dir,
    *,
    panoptic_json,
    label_dir,
    image_dir,
    split="train",
    spec=None,
    name="custom",
    label_divisor=256,
    ignore_label=255,
    treat_crowd_as_ignore=False,
    num_shards=None,
    num_workers=1,
    verbose=True,
):
    """Converts a COCO-panoptic-format dataset described by a `DatasetSpec` to TFRecords.

    Args:
        output_dir: destination folder.
        panoptic_json: the panoptic JSON.
        label_dir: the folder of its PNGs.
        image_dir: the folder of the images (JSON `images[].file_name` is relative to it).
        split: written split name. Defaults to `"train"`.
        spec: a `DatasetSpec`, registered name or spec JSON path. Defaults to `None`: built from
            the JSON categories with `name`, `label_divisor` and `ignore_label`.
        name: defaults to `"custom"`.
        label_divisor: defaults to `256`.
        ignore_label: defaults to `255`.
        treat_crowd_as_ignore: defaults to `False`.
        num_shards, num_workers, verbose: see `convert_coco_panoptic`.

    Returns:
        The list of shard paths.
    """
    if spec is None:
        spec = spec_from_panoptic_json(panoptic_json, name, label_divisor, ignore_label)
    return converter.convert_coco_format(
        panoptic_json, label_dir, converter.image_in_folder(image_dir), get_dataset_spec(spec),
        output_dir, split, treat_crowd_as_ignore=treat_crowd_as_ignore, num_shards=num_shards,
        num_workers=num_workers, verbose=verbose,
    )


def _define_flags(flag_values):
    from absl import flags

    for flag, text in (
        ("panoptic_json", "Panoptic JSON."),
        ("label_dir", "Folder of the panoptic PNGs."),
        ("image_dir", "Folder of the images."),
    ):
        flags.DEFINE_string(flag, None, text, flag_values=flag_values, required=True)
    flags.DEFINE_string("split", "train", "Written split name.", flag_values=flag_values)
    flags.DEFINE_string(
        "spec", None, "DatasetSpec JSON file or registered name (default: from the JSON).",
        flag_values=flag_values,
    )
    flags.DEFINE_string("name", "custom", "Dataset name (without --spec).", flag_values=flag_values)
    flags.DEFINE_integer("label_divisor", 256, "Without --spec.", flag_values=flag_values)
    flags.DEFINE_integer("ignore_label", 255, "Without --spec.", flag_values=flag_values)
    converter.define_common_flags(flag_values, crowd_as_ignore_default=False)


def main(argv=None):
    from keras_axial.data._cli import parse_flags

    f = parse_flags(argv, _define_flags, __doc__)
    return converter.run_converter(
        convert_custom_panoptic, output_dir=f.output_dir, panoptic_json=f.panoptic_json,
        label_dir=f.label_dir, image_dir=f.image_dir, split=f.split, spec=f.spec, name=f.name,
        label_divisor=f.label_divisor, ignore_label=f.ignore_label,
        treat_crowd_as_ignore=f.treat_crowd_as_ignore, num_shards=f.num_shards,
        num_workers=f.num_workers,
    )


if __name__ == "__main__":
    sys.exit(main())

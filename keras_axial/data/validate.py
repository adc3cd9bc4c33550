"""Checks a dataset before training and explains each problem in plain words.

    python -m keras_axial.data.validate --format=coco --root=/data/coco --split=val2017
    python -m keras_axial.data.validate --format=cityscapes --root=/data/cityscapes --split=val
    python -m keras_axial.data.validate --format=mapillary --root=/data/mapillary --split=validation
    python -m keras_axial.data.validate --format=custom --panoptic_json=... --label_dir=... \
        --image_dir=... [--spec=my_spec.json]
    python -m keras_axial.data.validate --format=image_folder --root=/data/imagenet/train
    python -m keras_axial.data.validate --format=tfrecord --root=/data/coco_tfrecords --split=val

Panoptic datasets (COCO panoptic format): a JSON without 'images'/'annotations'/'categories', an
annotation of an unknown image, an empty split, a category the dataset spec does not know (or
whose thing/stuff flag disagrees), a missing or unreadable image or PNG, an image and label of
different sizes, PNG segment ids the JSON does not list, a segment of an unknown category, more
instances of a class than the label divisor allows. Image folders: no class folder, an empty class
folder, unreadable images. Converted TFRecords: missing spec/info files or shards, unreadable
records, image/label size mismatches, labels outside the spec's classes, wrong example counts.

Exit status 0 when no problem was found, 1 otherwise.
"""

import dataclasses
import os
import sys

import numpy as np

from keras_axial.data import panoptic_format
from keras_axial.data.dataset_spec import get_dataset_spec
from keras_axial.data.panoptic_format import DatasetProblem

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclasses.dataclass
class ValidationReport:
    """What `validate_*` found: the problems and how many items were checked."""

    what: str
    num_checked: int = 0
    problems: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def summary(self, max_problems=50):
        """The report in plain words, at most `max_problems` problems listed."""
        if self.ok:
            return f"Checked {self.num_checked} item(s) of {self.what}: no problems found."
        lines = [
            f"Checked {self.num_checked} item(s) of {self.what}: "
            f"{len(self.problems)} problem(s) found."
        ]
        lines += [f"  - {problem}" for problem in self.problems[:max_problems]]
        if len(self.problems) > max_problems:
            lines.append(f"  ... and {len(self.problems) - max_problems} more.")
        return "\n".join(lines)


def validate_panoptic_dataset(panoptic_json, label_dir, image_path_fn, spec=None,
                              treat_crowd_as_ignore=False, max_images=None):
    """Checks a COCO-panoptic-format dataset; returns a `ValidationReport`.

    Args:
        panoptic_json: path of the panoptic JSON.
        label_dir: folder of the PNGs.
        image_path_fn: `entry -> path` for JSON image entries, or an image folder path.
        spec: `DatasetSpec` or registered name. Defaults to `None`: built from the JSON.
        treat_crowd_as_ignore: as the converter will be run. Defaults to `False`.
        max_images: check only the first images. Defaults to `None` (all).
    """
    from keras_axial.data.converter import image_in_folder
    from keras_axial.data.convert_custom import spec_from_panoptic_json

    report = ValidationReport(f"panoptic dataset {os.fspath(panoptic_json)!r}")
    if isinstance(image_path_fn, (str, os.PathLike)):
        image_path_fn = image_in_folder(image_path_fn)
    try:
        data = panoptic_format.load_json(panoptic_json)
    except (FileNotFoundError, ValueError) as error:
        report.problems.append(DatasetProblem(os.fspath(panoptic_json), str(error)))
        return report
    if not os.path.isdir(label_dir):
        report.problems.append(
            DatasetProblem(os.fspath(label_dir), "the panoptic PNG folder does not exist.")
        )
    records, categories, problems = panoptic_format.read_records(data, label_dir, image_path_fn)
    report.problems += [
        dataclasses.replace(p, path=os.fspath(panoptic_json)) if p.path == "panoptic JSON" else p
        for p in problems
    ]
    try:
        spec = (
            spec_from_panoptic_json(data, "custom") if spec is None else get_dataset_spec(spec)
        )
    except (ValueError, TypeError) as error:
        report.problems.append(
            DatasetProblem(os.fspath(panoptic_json), f"its categories are not usable: {error}")
        )
        return report
    mapping, problems = panoptic_format.map_categories(
        categories, spec, source=os.fspath(panoptic_json)
    )
    report.problems += problems
    for record in records[:max_images]:
        _, problems = panoptic_format.load_example(record, mapping, spec, treat_crowd_as_ignore)
        report.problems += problems
        report.num_checked += 1
    return report


def validate_image_folder(directory, check_images=True):
    """Checks an ImageNet-style folder (one sub-folder of images per class)."""
    from PIL import Image

    directory = os.fspath(directory)
    report = ValidationReport(f"image folder {directory!r}")
    if not os.path.isdir(directory):
        report.problems.append(DatasetProblem(directory, "the folder does not exist."))
        return report
    classes = sorted(e.name for e in os.scandir(directory) if e.is_dir())
    if not classes:
        report.problems.append(
            DatasetProblem(directory, "has no class sub-folder (expected <folder>/<class>/<file>).")
        )
    for class_name in classes:
        class_dir = os.path.join(directory, class_name)
        files = sorted(f for f in os.listdir(class_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            kinds = ", ".join(IMAGE_EXTENSIONS)
            report.problems.append(
                DatasetProblem(class_dir, f"class folder has no image ({kinds}).")
            )
        for name in files:
            path = os.path.join(class_dir, name)
            report.num_checked += 1
            if not check_images:
                continue
            try:
                with Image.open(path) as image:
                    image.load()
            except Exception as error:  # PIL raises many types for broken files.
                report.problems.append(DatasetProblem(path, f"the image cannot be read ({error})."))
    return report


def validate_tfrecords(data_dir, split):
    """Checks a converted keras-axial TFRecord split: every record decodes and is consistent."""
    import tensorflow as tf

    from keras_axial.data import tfrecord

    data_dir = os.fspath(data_dir)
    report = ValidationReport(f"split {split!r} of {data_dir!r}")
    try:
        spec, info = tfrecord.read_dataset_info(data_dir)
        files = tfrecord.split_files(data_dir, split)
    except (FileNotFoundError, ValueError) as error:
        report.problems.append(DatasetProblem(data_dir, str(error)))
        return report
    allowed = np.array(list(range(spec.num_classes)) + [spec.ignore_label])
    for path in files:
        try:
            for index, serialized in enumerate(tf.data.TFRecordDataset(path)):
                where = f"{path} record {index}"
                try:
                    example = tfrecord.parse_example(serialized)
                except tf.errors.OpError as error:
                    report.problems.append(
                        DatasetProblem(where, f"cannot be decoded ({error.message}).")
                    )
                    continue
                report.num_checked += 1
                image, panoptic = example["image"].numpy(), example["panoptic"].numpy()
                image_id = example["image_id"].numpy().decode()
                if image.shape[:2] != panoptic.shape:
                    report.problems.append(
                        DatasetProblem(
                            where,
                            f"image {image_id!r} is {image.shape[:2]} but its label is "
                            f"{panoptic.shape}.",
                        )
                    )
                classes = np.unique(panoptic // spec.label_divisor)
                unknown = np.setdiff1d(classes, allowed)
                if unknown.size:
                    report.problems.append(
                        DatasetProblem(
                            where,
                            f"image {image_id!r} has semantic ids {unknown.tolist()} outside the "
                            f"{spec.num_classes} classes of spec {spec.name!r} and its ignore "
                            f"label {spec.ignore_label}.",
                        )
                    )
        except tf.errors.OpError as error:
            report.problems.append(DatasetProblem(path, f"the shard is corrupt ({error.message})."))
    expected = info["splits"][split]["num_examples"]
    if report.num_checked != expected:
        report.problems.append(
            DatasetProblem(
                os.path.join(data_dir, tfrecord.INFO_FILENAME),
                f"says split {split!r} has {expected} examples, the shards hold "
                f"{report.num_checked} readable ones.",
            )
        )
    return report


def _define_flags(flag_values):
    from absl import flags

    flags.DEFINE_enum(
        "format", None, ["coco", "cityscapes", "mapillary", "custom", "image_folder", "tfrecord"],
        "Dataset format.", flag_values=flag_values, required=True,
    )
    flags.DEFINE_string("root", None, "Dataset folder.", flag_values=flag_values)
    flags.DEFINE_string("split", None, "Split name.", flag_values=flag_values)
    flags.DEFINE_string("panoptic_json", None, "custom/coco: JSON.", flag_values=flag_values)
    flags.DEFINE_string("label_dir", None, "custom/coco: PNG folder.", flag_values=flag_values)
    flags.DEFINE_string("image_dir", None, "custom/coco: image folder.", flag_values=flag_values)
    flags.DEFINE_string(
        "spec", None, "DatasetSpec name or JSON (default: the format's preset, or from the JSON).",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "treat_crowd_as_ignore", None, "As the converter will run (default: the format's).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer("max_images", None, "Check only the first.", flag_values=flag_values)
    flags.DEFINE_integer("max_problems", 50, "Problems to print.", flag_values=flag_values)


def _validate_from_flags(f):
    if f.format == "image_folder":
        return validate_image_folder(f.root)
    if f.format == "tfrecord":
        return validate_tfrecords(f.root, f.split or "train")
    crowd_as_ignore = f.format == "coco" if f.treat_crowd_as_ignore is None else (
        f.treat_crowd_as_ignore
    )
    if f.format == "coco":
        from keras_axial.data.convert_coco import coco_paths

        panoptic_json, label_dir, image_dir = coco_paths(
            f.root, f.split or "train2017", f.panoptic_json, f.label_dir, f.image_dir
        )
        spec = f.spec or "coco"
    elif f.format == "cityscapes":
        from keras_axial.data.convert_cityscapes import cityscapes_paths

        panoptic_json, label_dir, image_dir = cityscapes_paths(f.root, f.split or "train")
        spec = f.spec or "cityscapes"
    elif f.format == "mapillary":
        from keras_axial.data.convert_mapillary import mapillary_paths

        panoptic_json, label_dir, image_dir = mapillary_paths(f.root, f.split or "training")
        spec = f.spec or "mapillary_vistas"
    else:
        if None in (f.panoptic_json, f.label_dir, f.image_dir):
            raise ValueError("--format=custom needs --panoptic_json, --label_dir and --image_dir.")
        panoptic_json, label_dir, image_dir, spec = (
            f.panoptic_json, f.label_dir, f.image_dir, f.spec
        )
    return validate_panoptic_dataset(
        panoptic_json, label_dir, image_dir, spec=spec, treat_crowd_as_ignore=crowd_as_ignore,
        max_images=f.max_images,
    )


def main(argv=None):
    from keras_axial.data._cli import parse_flags

    f = parse_flags(argv, _define_flags, __doc__)
    if f.format != "custom" and not f.root and f.format != "coco":
        print(f"--format={f.format} needs --root.", file=sys.stderr)
        return 2
    try:
        report = _validate_from_flags(f)
    except (FileNotFoundError, ValueError) as error:
        print(f"Cannot validate: {error}", file=sys.stderr)
        return 1
    print(report.summary(f.max_problems))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

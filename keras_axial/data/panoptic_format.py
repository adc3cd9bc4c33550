"""Reading datasets in the COCO panoptic format (JSON + RGB-encoded PNG segment maps).

COCO, Cityscapes (`cityscapes_panoptic_*.json` from cityscapesScripts), Mapillary Vistas
(`panoptic_2018.json`), the synthetic dataset and custom datasets all store panoptic labels this
way: one PNG per image whose pixel `(r, g, b)` is the segment id `r + 256 g + 65536 b` (0 = void),
and a JSON listing, per image, the segments with their `category_id` and `iscrowd` flag.

This module turns one such image into the keras-axial label map, in the contiguous ids of a
`DatasetSpec`: `panoptic = class * label_divisor + instance`, where

- stuff segments get instance 0 (several segments of one stuff class merge),
- non-crowd thing segments get instance ids `1, 2, ...` per class, in the JSON's segment order,
- crowd segments become void (`treat_crowd_as_ignore=True`, the COCO convention) or instance 0 of
  their thing class (`False`, the Cityscapes convention: crowd keeps its semantic class),
- PNG pixels with segment id 0 are void (`ignore_label * label_divisor`).

Every problem is reported in plain words with the file it concerns (`DatasetProblem`), so the
converters and `python -m keras_axial.data.validate` share one set of checks.
"""

import dataclasses
import io
import json
import os

import numpy as np
from PIL import Image

# PIL formats kept byte-for-byte in TFRecords (tf.io.decode_image reads them); others are
# re-encoded as PNG.
_KEPT_IMAGE_FORMATS = {"JPEG": "jpeg", "PNG": "png"}


@dataclasses.dataclass(frozen=True)
class DatasetProblem:
    """One problem found in a dataset: the file (or JSON) it concerns, and what is wrong."""

    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}"


class DatasetError(ValueError):
    """Raised when an input file cannot be converted; carries the `DatasetProblem`s."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclasses.dataclass(frozen=True)
class PanopticRecord:
    """One annotated image of a COCO-panoptic-format dataset."""

    image_id: str
    image_path: str
    label_path: str
    segments_info: tuple


@dataclasses.dataclass
class PanopticExample:
    """A decoded, checked image and its label map in contiguous ids, ready to be written."""

    image_id: str
    image_path: str
    image_bytes: bytes
    image_format: str
    height: int
    width: int
    panoptic: np.ndarray  # int32 [height, width]


def load_json(path, what="panoptic JSON"):
    """Reads a JSON file; errors name the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The {what} {path!r} does not exist.")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"The {what} {path!r} is not valid JSON: {error}") from None


def read_records(panoptic_json, label_dir, image_path_fn):
    """Lists the annotated images of a COCO-panoptic-format JSON.

    Args:
        panoptic_json: the JSON dict (already loaded) or its path.
        label_dir: folder of the PNG segment maps (`annotation["file_name"]` inside it).
        image_path_fn: `image_path_fn(image_entry) -> path` for an entry of the JSON `images`
            list (COCO: `image_dir/file_name`; Cityscapes adds the city folder).

    Returns:
        `(records, categories, problems)`: the records, the JSON `categories` list, and the
        structural problems of the JSON itself (missing keys, annotations of unknown images, an
        empty split).
    """
    source = "panoptic JSON"
    if not isinstance(panoptic_json, dict):
        source = os.fspath(panoptic_json)
        panoptic_json = load_json(panoptic_json)
    problems = []
    missing = [k for k in ("images", "annotations", "categories") if k not in panoptic_json]
    if missing:
        problems.append(
            DatasetProblem(
                source,
                f"lacks the key(s) {missing}; a COCO panoptic JSON has 'images', 'annotations' "
                "and 'categories'.",
            )
        )
        return [], panoptic_json.get("categories", []), problems
    images = {}
    for entry in panoptic_json["images"]:
        if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
            problems.append(
                DatasetProblem(source, f"image entry {entry!r:.120} lacks 'id' or 'file_name'.")
            )
            continue
        images[entry["id"]] = entry
    records = []
    for annotation in panoptic_json["annotations"]:
        keys = [k for k in ("image_id", "file_name", "segments_info") if k not in annotation]
        if keys:
            problems.append(
                DatasetProblem(source, f"annotation {annotation!r:.120} lacks the key(s) {keys}.")
            )
            continue
        image_id = annotation["image_id"]
        if image_id not in images:
            problems.append(
                DatasetProblem(
                    source,
                    f"annotation {annotation['file_name']!r} refers to image id {image_id!r}, "
                    "which the 'images' list does not contain.",
                )
            )
            continue
        records.append(
            PanopticRecord(
                image_id=str(image_id),
                image_path=os.fspath(image_path_fn(images[image_id])),
                label_path=os.path.join(os.fspath(label_dir), annotation["file_name"]),
                segments_info=tuple(annotation["segments_info"]),
            )
        )
    if not records and not problems:
        problems.append(
            DatasetProblem(source, "the split is empty: the JSON lists no annotated image.")
        )
    return records, panoptic_json["categories"], problems


def category_to_class(categories, spec, source="panoptic JSON"):
    """Maps the dataset's category ids to the spec's contiguous class ids.

    Categories are matched by name when every JSON category name is a class of the spec (this
    also reads Cityscapes JSONs made with `--use-train-id`), otherwise by id through
    `spec.category_ids`. A category the spec does not know, or whose thing/stuff flag disagrees
    with the spec, raises `DatasetError`.

    Returns:
        dict `{category_id: class_id}`.
    """
    mapping, problems = map_categories(categories, spec, source)
    if problems:
        raise DatasetError(problems)
    return mapping


def map_categories(categories, spec, source="panoptic JSON"):
    """Like `category_to_class`, but returns `(mapping of the good categories, problems)`."""
    problems = []
    names = [c.get("name") for c in categories if isinstance(c, dict)]
    by_name = {name: index for index, name in enumerate(spec.class_names)}
    by_id = {category_id: index for index, category_id in enumerate(spec.dataset_category_ids())}
    use_names = bool(names) and all(name in by_name for name in names)
    mapping = {}
    for category in categories:
        if not isinstance(category, dict) or "id" not in category:
            problems.append(DatasetProblem(source, f"category {category!r:.120} lacks an 'id'."))
            continue
        key = category.get("name") if use_names else category["id"]
        class_id = (by_name if use_names else by_id).get(key)
        if class_id is None:
            known = list(spec.class_names)[:8]
            problems.append(
                DatasetProblem(
                    source,
                    f"unknown category id={category['id']!r} name={category.get('name')!r}: "
                    f"dataset spec {spec.name!r} has no such class (its classes: {known}"
                    f"{'...' if spec.num_classes > 8 else ''}).",
                )
            )
            continue
        if "isthing" in category and bool(category["isthing"]) != spec.is_thing(class_id):
            kind = "thing" if category["isthing"] else "stuff"
            problems.append(
                DatasetProblem(
                    source,
                    f"category {category.get('name')!r} is a {kind} in the JSON but not in "
                    f"dataset spec {spec.name!r}.",
                )
            )
            continue
        mapping[category["id"]] = class_id
    return mapping, problems


def rgb_to_segment_ids(rgb):
    """COCO panoptic PNG `(r, g, b)` -> segment id `r + 256 g + 65536 b` (uint32 array)."""
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def segment_ids_to_rgb(ids):
    """Inverse of `rgb_to_segment_ids` (uint8 `[..., 3]`)."""
    ids = np.asarray(ids, np.uint32)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def _read_image(path, problems):
    """Returns (bytes, tf format name, (width, height)) or None, adding problems."""
    if not os.path.isfile(path):
        problems.append(DatasetProblem(path, "the image file is missing."))
        return None
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size, mode, image_format = image.size, image.mode, image.format
            if image_format in _KEPT_IMAGE_FORMATS and mode in ("RGB", "L"):
                return data, _KEPT_IMAGE_FORMATS[image_format], size
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
            return buffer.getvalue(), "png", size
    except Exception as error:  # PIL raises many types for broken files.
        problems.append(DatasetProblem(path, f"the image cannot be read ({error})."))
        return None


def _read_label(path, problems):
    if not os.path.isfile(path):
        problems.append(DatasetProblem(path, "the panoptic PNG is missing."))
        return None
    try:
        with Image.open(path) as label:
            if label.format != "PNG":
                problems.append(
                    DatasetProblem(path, f"the panoptic label is {label.format}, expected a PNG.")
                )
                return None
            return rgb_to_segment_ids(np.asarray(label.convert("RGB")))
    except Exception as error:
        problems.append(DatasetProblem(path, f"the panoptic PNG cannot be read ({error})."))
        return None


def load_example(record, class_of_category, spec, treat_crowd_as_ignore):
    """Reads and checks one record; returns `(PanopticExample or None, problems)`.

    Checks: image and PNG exist and decode; they have the same size; every non-zero segment id of
    the PNG is listed in the JSON; every segment's category is known; each class has fewer than
    `label_divisor` instances.
    """
    problems = []
    image = _read_image(record.image_path, problems)
    segment_map = _read_label(record.label_path, problems)
    if image is None or segment_map is None:
        return None, problems
    image_bytes, image_format, (width, height) = image
    if segment_map.shape != (height, width):
        problems.append(
            DatasetProblem(
                record.label_path,
                f"the panoptic PNG is {segment_map.shape[1]}x{segment_map.shape[0]} (width x "
                f"height) but its image {record.image_path!r} is {width}x{height}.",
            )
        )
        return None, problems

    void = spec.ignore_label * spec.label_divisor
    value_of_segment = {0: void}
    next_instance = {}
    for segment in record.segments_info:
        if not isinstance(segment, dict) or "id" not in segment or "category_id" not in segment:
            problems.append(
                DatasetProblem(
                    record.label_path,
                    f"segment {segment!r:.120} in the JSON lacks 'id' or 'category_id'.",
                )
            )
            continue
        class_id = class_of_category.get(segment["category_id"])
        if class_id is None:
            problems.append(
                DatasetProblem(
                    record.label_path,
                    f"segment {segment['id']} has unknown category {segment['category_id']!r} "
                    f"(known: {sorted(class_of_category)[:12]}...).",
                )
            )
            continue
        if not spec.is_thing(class_id):
            value = class_id * spec.label_divisor
        elif segment.get("iscrowd", 0):
            value = void if treat_crowd_as_ignore else class_id * spec.label_divisor
        else:
            instance = next_instance.get(class_id, 1)
            if instance >= spec.label_divisor:
                problems.append(
                    DatasetProblem(
                        record.label_path,
                        f"class {spec.class_names[class_id]!r} has more than "
                        f"{spec.label_divisor - 1} instances, which label_divisor "
                        f"{spec.label_divisor} cannot encode.",
                    )
                )
                continue
            next_instance[class_id] = instance + 1
            value = class_id * spec.label_divisor + instance
        value_of_segment[int(segment["id"])] = value

    unique_ids, inverse = np.unique(segment_map, return_inverse=True)
    unlisted = [int(i) for i in unique_ids if int(i) not in value_of_segment]
    if unlisted:
        problems.append(
            DatasetProblem(
                record.label_path,
                f"the PNG contains segment ids {unlisted[:10]}{'...' if len(unlisted) > 10 else ''}"
                " that the JSON does not list for this image.",
            )
        )
    if problems:
        return None, problems
    lookup = np.array([value_of_segment[int(i)] for i in unique_ids], np.int32)
    panoptic = lookup[inverse.reshape(segment_map.shape)]
    example = PanopticExample(
        image_id=record.image_id,
        image_path=record.image_path,
        image_bytes=image_bytes,
        image_format=image_format,
        height=height,
        width=width,
        panoptic=panoptic,
    )
    return example, problems

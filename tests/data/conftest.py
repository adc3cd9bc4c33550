"""Tiny datasets in the real on-disk formats (COCO, Cityscapes, Mapillary Vistas, image folders).

Each writer returns what the test needs to check the conversion exactly: the expected label map in
the spec's contiguous ids for every image.
"""

import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from keras_axial.data import get_dataset_spec
from keras_axial.data.panoptic_format import segment_ids_to_rgb


def _image(height, width, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_panoptic_files(image_dir, label_dir, json_path, entries, categories, image_format):
    """Writes COCO-panoptic-format files.

    `entries`: list of dicts with `id`, `name` (file stem), `segment_map` (uint32 ids) and
    `segments_info`; images are random pixels of the label's size.
    """
    images, annotations = [], []
    for index, entry in enumerate(entries):
        height, width = entry["segment_map"].shape
        image_name = f"{entry['name']}.{image_format}"
        image_path = pathlib.Path(entry.get("image_path") or pathlib.Path(image_dir) / image_name)
        image_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_image(height, width, index)).save(image_path)
        label_name = entry.get("label_name", f"{entry['name']}.png")
        pathlib.Path(label_dir).mkdir(parents=True, exist_ok=True)
        Image.fromarray(segment_ids_to_rgb(entry["segment_map"])).save(
            pathlib.Path(label_dir) / label_name
        )
        images.append(
            {"id": entry["id"], "file_name": image_name, "height": height, "width": width}
        )
        annotations.append(
            {"image_id": entry["id"], "file_name": label_name,
             "segments_info": entry["segments_info"]}
        )
    pathlib.Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    with open(json_path, "w") as handle:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, handle)


def _segment(segment_id, category_id, iscrowd=0):
    return {"id": segment_id, "category_id": category_id, "iscrowd": iscrowd}


def _paint(regions, value_of_region, dtype=np.int32):
    """Label map with `value_of_region[r]` on the pixels of region `r`."""
    return np.array([value_of_region[r] for r in range(6)], dtype)[regions]


def _scene(height=24, width=32):
    """Region masks shared by the fixtures: stuff top/bottom, two things, a crowd, a void corner."""
    regions = np.zeros((height, width), np.int32)
    regions[height // 2:] = 1  # second stuff
    regions[4:10, 4:12] = 2  # thing instance A
    regions[6:14, 16:28] = 3  # thing instance B
    regions[18:22, 2:8] = 4  # crowd of the thing class
    regions[0:3, 0:3] = 5  # void
    return regions


@pytest.fixture
def coco_dataset(tmp_path):
    """COCO panoptic val2017 with 2 images: sky / grass stuff, 2 persons, a car crowd, void."""
    spec = get_dataset_spec("coco")
    root = tmp_path / "coco"
    sky, grass, person, car = 187, 193, 1, 3
    regions = _scene()
    ids = {0: 5001, 1: 77, 2: 300, 3: 70000, 4: 12, 5: 0}
    segments = [
        _segment(5001, sky), _segment(77, grass), _segment(300, person),
        _segment(70000, person), _segment(12, car, iscrowd=1),
    ]
    entries = [
        {"id": 139, "name": "000000000139", "segment_map": _paint(regions, ids, np.uint32),
         "segments_info": segments},
        {"id": 285, "name": "000000000285", "segment_map": np.full((20, 18), 77, np.uint32),
         "segments_info": [_segment(77, grass)]},
    ]
    categories = spec.to_coco_categories()
    write_panoptic_files(
        root / "val2017", root / "annotations" / "panoptic_val2017",
        root / "annotations" / "panoptic_val2017.json", entries, categories, "jpg",
    )
    d = spec.label_divisor
    cls = {c: spec.category_ids.index(c) for c in (sky, grass, person, car)}
    void = spec.ignore_label * d
    values = [cls[sky] * d, cls[grass] * d, cls[person] * d + 1, cls[person] * d + 2, void, void]
    expected = _paint(regions, values)  # crowd -> void
    return {
        "root": root, "spec": spec,
        "expected": {"139": expected, "285": np.full((20, 18), cls[grass] * d, np.int32)},
        "expected_crowd_kept": np.where(regions == 4, cls[car] * d, expected),
    }


@pytest.fixture
def cityscapes_dataset(tmp_path):
    """cityscapesScripts layout: label-id categories, crowd = segment id < 1000 of a thing class."""
    spec = get_dataset_spec("cityscapes")
    root = tmp_path / "cityscapes"
    road, sky, car, person = 7, 23, 26, 24
    regions = _scene()
    ids = {0: sky, 1: road, 2: car * 1000 + 0, 3: car * 1000 + 5, 4: person, 5: 0}
    segments = [
        _segment(sky, sky), _segment(road, road), _segment(car * 1000, car),
        _segment(car * 1000 + 5, car), _segment(person, person, iscrowd=1),
    ]
    # Cityscapes categories: label ids, names, isthing; as createPanopticImgs.py writes them.
    categories = [
        {"id": cid, "name": name, "isthing": int(spec.is_thing(i)), "color": list(spec.colors[i]),
         "supercategory": "x"}
        for i, (cid, name) in enumerate(zip(spec.category_ids, spec.class_names))
    ]
    entries = []
    for city, frame in (("frankfurt", "000000_000294"), ("lindau", "000001_000019")):
        stem = f"{city}_{frame}"
        entries.append(
            {"id": stem, "name": f"{stem}_leftImg8bit",
             "image_path": root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png",
             "label_name": f"{stem}_gtFine_panoptic.png",
             "segment_map": _paint(regions, ids, np.uint32),
             "segments_info": segments}
        )
    write_panoptic_files(
        None, root / "gtFine" / "cityscapes_panoptic_val",
        root / "gtFine" / "cityscapes_panoptic_val.json", entries, categories, "png",
    )
    d = spec.label_divisor
    cls = {c: spec.category_ids.index(c) for c in (road, sky, car, person)}
    # Crowd keeps its class with instance 0.
    values = [cls[sky] * d, cls[road] * d, cls[car] * d + 1, cls[car] * d + 2, cls[person] * d,
              spec.ignore_label * d]
    expected = _paint(regions, values)
    return {"root": root, "spec": spec, "expected": expected, "categories": categories}


@pytest.fixture
def mapillary_dataset(tmp_path):
    """Mapillary Vistas v1.2 layout: validation/{images,panoptic}, panoptic_2018.json."""
    spec = get_dataset_spec("mapillary_vistas")
    root = tmp_path / "mapillary"
    road, sky, car, person = 14, 28, 56, 20
    regions = _scene()
    ids = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: 0}
    segments = [
        _segment(1, sky), _segment(2, road), _segment(3, car), _segment(4, person),
        _segment(5, car, iscrowd=1),
    ]
    entries = [
        {"id": "abc_XYZ-1", "name": "abc_XYZ-1",
         "segment_map": _paint(regions, ids, np.uint32),
         "segments_info": segments}
    ]
    panoptic_dir = root / "validation" / "panoptic"
    write_panoptic_files(
        root / "validation" / "images", panoptic_dir, panoptic_dir / "panoptic_2018.json",
        entries, spec.to_coco_categories(), "jpg",
    )
    d = spec.label_divisor
    cls = {c: spec.category_ids.index(c) for c in (road, sky, car, person)}
    values = [cls[sky] * d, cls[road] * d, cls[car] * d + 1, cls[person] * d + 1, cls[car] * d,
              spec.ignore_label * d]
    expected = _paint(regions, values)
    return {"root": root, "spec": spec, "expected": expected}


@pytest.fixture
def image_folder(tmp_path):
    """ImageNet-style folder: 3 classes, images of varied sizes and formats."""
    root = tmp_path / "imagenet" / "train"
    for class_index, class_name in enumerate(["n01440764", "n01443537", "n01484850"]):
        folder = root / class_name
        folder.mkdir(parents=True)
        for index in range(4):
            height, width = 40 + 7 * index, 56 - 5 * index
            image = np.full((height, width, 3), 60 * class_index + 10 * index, np.uint8)
            suffix = "JPEG" if index % 2 else "png"
            Image.fromarray(image).save(folder / f"{class_name}_{index}.{suffix}")
    return root


@pytest.fixture(scope="session")
def synthetic_tfrecords(tmp_path_factory):
    """A small converted synthetic dataset: 12 train images in 4 shards, 5 val images."""
    from keras_axial.data.synthetic import generate_synthetic_tfrecords

    return generate_synthetic_tfrecords(
        tmp_path_factory.mktemp("synthetic") / "tfrecords", splits={"train": 12, "val": 5}, seed=0
    )

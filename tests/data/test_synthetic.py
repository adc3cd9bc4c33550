"""The synthetic panoptic dataset: deterministic, varied, in the COCO panoptic format."""

import json

import numpy as np

from keras_axial.data import get_dataset_spec
from keras_axial.data import tfrecord
from keras_axial.data.synthetic import main, render_synthetic_example
from keras_axial.data.validate import validate_panoptic_dataset


def test_content_is_varied_and_deterministic():
    spec = get_dataset_spec("synthetic")
    things = {spec.category_ids[i] for i in spec.thing_class_ids}
    sizes, instance_counts, categories = set(), [], set()
    crowd_images = void_images = 0
    for index in range(40):
        image, segment_map, segments = render_synthetic_example(seed=3, index=index)
        assert image.dtype == np.uint8 and image.shape[:2] == segment_map.shape
        sizes.add(image.shape[:2])
        listed = {s["id"] for s in segments}
        assert set(np.unique(segment_map)) - {0} == listed  # every segment listed and visible
        for s in segments:
            assert s["area"] == int((segment_map == s["id"]).sum())
        instances = [s for s in segments if s["category_id"] in things and not s["iscrowd"]]
        assert len(instances) <= 10
        instance_counts.append(len(instances))
        categories |= {s["category_id"] for s in segments}
        crowd_images += any(s["iscrowd"] for s in segments)
        void_images += bool((segment_map == 0).any())
    assert categories == set(spec.category_ids)  # all 3 stuff and 3 thing classes appear
    assert len(sizes) > 30 and min(instance_counts) <= 2 and max(instance_counts) >= 7
    assert crowd_images >= 3 and void_images >= 3

    first = render_synthetic_example(seed=3, index=7)
    again = render_synthetic_example(seed=3, index=7)
    other_split = render_synthetic_example(seed=3, index=7, split="val")
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert first[0].shape != other_split[0].shape or (first[0] != other_split[0]).any()


def test_cli_writes_coco_format_and_tfrecords(tmp_path):
    assert main(["synthetic", f"--output_dir={tmp_path / 'coco'}", "--num_images=3",
                 "--num_val_images=6", "--seed=1", f"--tfrecord_dir={tmp_path / 'tf'}"]) == 0
    data = json.loads((tmp_path / "coco" / "annotations" / "panoptic_val.json").read_text())
    assert len(data["images"]) == 6 and len(data["categories"]) == 6
    report = validate_panoptic_dataset(
        tmp_path / "coco" / "annotations" / "panoptic_val.json",
        tmp_path / "coco" / "annotations" / "panoptic_val",
        tmp_path / "coco" / "images" / "val", spec="synthetic",
    )
    assert report.ok, report.summary()
    assert tfrecord.split_size(tmp_path / "tf", "val") == 6
    assert tfrecord.split_size(tmp_path / "tf", "train") == 3
    assert tfrecord.read_dataset_info(tmp_path / "tf")[0] == get_dataset_spec("synthetic")

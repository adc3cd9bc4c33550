"""Converters: real-format fixtures -> TFRecords read back exactly; failures leave nothing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_axial.data import DatasetSpec
from keras_axial.data import tfrecord
from keras_axial.data.convert_cityscapes import convert_cityscapes_panoptic
from keras_axial.data.convert_coco import convert_coco_panoptic
from keras_axial.data.convert_coco import main as coco_main
from keras_axial.data.convert_custom import convert_custom_panoptic
from keras_axial.data.convert_custom import main as custom_main
from keras_axial.data.convert_mapillary import convert_mapillary_panoptic
from keras_axial.data.panoptic_format import DatasetError


def _read_split(data_dir, split):
    examples = {}
    for path in tfrecord.split_files(data_dir, split):
        for serialized in tf.data.TFRecordDataset(path):
            example = {k: v.numpy() for k, v in tfrecord.parse_example(serialized).items()}
            examples[example["image_id"].decode()] = example
    return examples


def test_coco(coco_dataset, tmp_path):
    out = tmp_path / "out"
    files = convert_coco_panoptic(out, coco_root=coco_dataset["root"], split="val2017",
                                  verbose=False)
    assert [os.path.basename(f) for f in files] == ["val-00000-of-00001.tfrecord"]
    assert DatasetSpec.load(out / "dataset_spec.json") == coco_dataset["spec"]
    assert tfrecord.split_size(out, "val") == 2
    examples = _read_split(out, "val")
    for image_id, expected in coco_dataset["expected"].items():
        np.testing.assert_array_equal(examples[image_id]["panoptic"], expected)
        assert examples[image_id]["image"].shape == expected.shape + (3,)
        assert examples[image_id]["height"] == expected.shape[0]
    assert examples["139"]["filename"] == b"000000000139.jpg"
    assert not [p for p in os.listdir(out) if p.startswith(".")]

    # Crowd kept as instance 0 of its class, through the CLI (absl flags).
    assert coco_main([
        "convert_coco", f"--coco_root={coco_dataset['root']}", "--split=val2017",
        f"--output_dir={tmp_path / 'cli'}", "--notreat_crowd_as_ignore", "--num_workers=1",
    ]) == 0
    np.testing.assert_array_equal(
        _read_split(tmp_path / "cli", "val")["139"]["panoptic"], coco_dataset["expected_crowd_kept"]
    )


def test_cityscapes_label_ids_and_train_ids(cityscapes_dataset, tmp_path):
    root = cityscapes_dataset["root"]
    convert_cityscapes_panoptic(tmp_path / "a", cityscapes_root=root, split="val", verbose=False)
    examples = _read_split(tmp_path / "a", "val")
    assert set(examples) == {"frankfurt_000000_000294", "lindau_000001_000019"}
    for example in examples.values():
        np.testing.assert_array_equal(example["panoptic"], cityscapes_dataset["expected"])

    # The `--use-train-id` variant of createPanopticImgs.py: category ids are train ids 0..18.
    gt = root / "gtFine"
    data = json.loads((gt / "cityscapes_panoptic_val.json").read_text())
    to_train_id = {c["id"]: i for i, c in enumerate(cityscapes_dataset["categories"])}
    for category in data["categories"]:
        category["id"] = to_train_id[category["id"]]
    for annotation in data["annotations"]:
        for segment in annotation["segments_info"]:
            segment["category_id"] = to_train_id[segment["category_id"]]
    os.rename(gt / "cityscapes_panoptic_val", gt / "cityscapes_panoptic_val_trainId")
    os.remove(gt / "cityscapes_panoptic_val.json")
    (gt / "cityscapes_panoptic_val_trainId.json").write_text(json.dumps(data))
    convert_cityscapes_panoptic(tmp_path / "b", cityscapes_root=root, split="val", verbose=False)
    for example in _read_split(tmp_path / "b", "val").values():
        np.testing.assert_array_equal(example["panoptic"], cityscapes_dataset["expected"])


def test_mapillary(mapillary_dataset, tmp_path):
    convert_mapillary_panoptic(
        tmp_path / "out", mapillary_root=mapillary_dataset["root"], split="validation",
        verbose=False,
    )
    examples = _read_split(tmp_path / "out", "val")
    np.testing.assert_array_equal(examples["abc_XYZ-1"]["panoptic"], mapillary_dataset["expected"])


def test_custom_with_spec_from_json_and_two_workers(coco_dataset, tmp_path):
    root = coco_dataset["root"]
    paths = dict(
        panoptic_json=root / "annotations" / "panoptic_val2017.json",
        label_dir=root / "annotations" / "panoptic_val2017", image_dir=root / "val2017",
    )
    convert_custom_panoptic(tmp_path / "one", split="val", treat_crowd_as_ignore=True,
                            verbose=False, name="mine", num_shards=2, **paths)
    spec = DatasetSpec.load(tmp_path / "one" / "dataset_spec.json")
    assert spec.name == "mine" and spec.num_classes == 133
    convert_custom_panoptic(tmp_path / "two", split="val", treat_crowd_as_ignore=True,
                            verbose=False, name="mine", num_shards=2, num_workers=2, **paths)
    for name in ("val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()

    spec_path = tmp_path / "spec.json"
    coco_dataset["spec"].save(spec_path)
    args = [f"--{k}={v}" for k, v in paths.items()]
    assert custom_main(
        ["convert_custom", *args, f"--spec={spec_path}", f"--output_dir={tmp_path / 'cli'}",
         "--split=val", "--treat_crowd_as_ignore"]
    ) == 0
    np.testing.assert_array_equal(
        _read_split(tmp_path / "cli", "val")["139"]["panoptic"], coco_dataset["expected"]["139"]
    )


def test_broken_input_names_the_file_and_leaves_nothing_half_written(coco_dataset, tmp_path,
                                                                    capsys):
    out = tmp_path / "out"
    convert_coco_panoptic(out, coco_root=coco_dataset["root"], split="val2017", verbose=False)
    before = {p: (out / p).read_bytes() for p in os.listdir(out)}

    broken = coco_dataset["root"] / "val2017" / "000000000285.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="000000000285.jpg: the image cannot be read"):
        convert_coco_panoptic(out, coco_root=coco_dataset["root"], split="val2017",
                              verbose=False)
    assert {p: (out / p).read_bytes() for p in os.listdir(out)} == before

    assert coco_main(["convert_coco", f"--coco_root={coco_dataset['root']}", "--split=val2017",
                      f"--output_dir={tmp_path / 'fresh'}"]) == 1
    assert "000000000285.jpg" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists() or not os.listdir(tmp_path / "fresh")


def test_spec_mismatch_and_bad_arguments(coco_dataset, cityscapes_dataset, tmp_path):
    out = tmp_path / "out"
    convert_coco_panoptic(out, coco_root=coco_dataset["root"], split="val2017", verbose=False)
    with pytest.raises(ValueError, match="different spec"):
        convert_cityscapes_panoptic(out, cityscapes_root=cityscapes_dataset["root"], split="val",
                                    verbose=False)
    with pytest.raises(FileNotFoundError, match="createPanopticImgs"):
        convert_cityscapes_panoptic(out, cityscapes_root=tmp_path, split="val", verbose=False)
    with pytest.raises(ValueError, match="coco_root"):
        convert_coco_panoptic(out, panoptic_json="x.json")
    with pytest.raises(SystemExit):
        coco_main(["convert_coco", "--split=val2017"])  # --output_dir is required


def test_cityscapes_and_mapillary_command_lines(cityscapes_dataset, mapillary_dataset, tmp_path):
    from keras_axial.data.convert_cityscapes import main as cityscapes_main
    from keras_axial.data.convert_mapillary import main as mapillary_main

    assert cityscapes_main(["convert_cityscapes", f"--cityscapes_root={cityscapes_dataset['root']}",
                            "--split=val", f"--output_dir={tmp_path / 'c'}"]) == 0
    assert tfrecord.split_size(tmp_path / "c", "val") == 2
    assert mapillary_main(["convert_mapillary", f"--mapillary_root={mapillary_dataset['root']}",
                           "--split=validation", f"--output_dir={tmp_path / 'm'}",
                           "--num_shards=1"]) == 0
    assert tfrecord.split_size(tmp_path / "m", "val") == 1


def test_module_entry_point_help():
    result = subprocess.run(
        [sys.executable, "-m", "keras_axial.data.validate", "--help"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and "--format" in result.stdout

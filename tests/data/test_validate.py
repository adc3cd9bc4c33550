"""`python -m keras_axial.data.validate`: each kind of problem is found and explained."""

import json
import os

import numpy as np
from PIL import Image

from keras_axial.data.convert_coco import convert_coco_panoptic
from keras_axial.data.panoptic_format import segment_ids_to_rgb
from keras_axial.data.validate import main, validate_image_folder, validate_tfrecords


def _coco_args(root):
    return ["validate", "--format=coco", f"--root={root}", "--split=val2017"]


def test_clean_datasets_pass(coco_dataset, cityscapes_dataset, mapillary_dataset, image_folder,
                             tmp_path, capsys):
    assert main(_coco_args(coco_dataset["root"])) == 0
    assert "2 item(s)" in capsys.readouterr().out
    assert main(["validate", "--format=cityscapes", f"--root={cityscapes_dataset['root']}",
                 "--split=val"]) == 0
    assert main(["validate", "--format=mapillary", f"--root={mapillary_dataset['root']}",
                 "--split=validation"]) == 0
    assert main(["validate", "--format=image_folder", f"--root={image_folder}"]) == 0
    convert_coco_panoptic(tmp_path / "tf", coco_root=coco_dataset["root"], split="val2017",
                          verbose=False)
    assert main(["validate", "--format=tfrecord", f"--root={tmp_path / 'tf'}", "--split=val"]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_every_problem_is_explained(coco_dataset, capsys):
    root = coco_dataset["root"]
    json_path = root / "annotations" / "panoptic_val2017.json"
    label_dir = root / "annotations" / "panoptic_val2017"
    data = json.loads(json_path.read_text())
    # 1. A missing image.
    os.remove(root / "val2017" / "000000000285.jpg")
    # 2. Image and label of different sizes + 3. PNG segment ids the JSON does not list.
    third = np.full((10, 10), 77, np.uint32)
    third[0, 0] = 4242
    Image.fromarray(segment_ids_to_rgb(third)).save(label_dir / "3.png")
    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(root / "val2017" / "3.jpg")
    data["images"].append({"id": 3, "file_name": "3.jpg", "height": 12, "width": 10})
    data["annotations"].append(
        {"image_id": 3, "file_name": "3.png",
         "segments_info": [{"id": 77, "category_id": 193, "iscrowd": 0}]}
    )
    # 4. A segment whose category is unknown; 5. an unreadable PNG.
    Image.fromarray(segment_ids_to_rgb(np.full((8, 8), 5, np.uint32))).save(label_dir / "4.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "val2017" / "4.jpg")
    data["images"].append({"id": 4, "file_name": "4.jpg", "height": 8, "width": 8})
    data["annotations"].append(
        {"image_id": 4, "file_name": "4.png",
         "segments_info": [{"id": 5, "category_id": 999, "iscrowd": 0}]}
    )
    (label_dir / "5.png").write_bytes(b"garbage")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "val2017" / "5.jpg")
    data["images"].append({"id": 5, "file_name": "5.jpg", "height": 8, "width": 8})
    data["annotations"].append({"image_id": 5, "file_name": "5.png", "segments_info": []})
    # 6. An unknown category in the category list.
    data["categories"].append({"id": 300, "name": "unicorn", "isthing": 1})
    json_path.write_text(json.dumps(data))

    assert main(_coco_args(root)) == 1
    out = capsys.readouterr().out
    assert "5 item(s)" in out
    expected = [
        "000000000285.jpg: the image file is missing",
        "3.png: the panoptic PNG is 10x10 (width x height) but its image",
        "4.png: segment 5 has unknown category 999",
        "5.png: the panoptic PNG cannot be read",
        "unknown category id=300 name='unicorn'",
    ]
    for text in expected:
        assert text in out, (text, out)

    # Unlisted PNG ids (the size check stops at the first problem of image 3, so fix its size).
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / "val2017" / "3.jpg")
    assert main(_coco_args(root)) == 1
    assert "3.png: the PNG contains segment ids [4242] that the JSON does not list" in (
        capsys.readouterr().out
    )


def test_empty_split_and_missing_json(tmp_path, capsys):
    json_path = tmp_path / "panoptic.json"
    json_path.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    (tmp_path / "labels").mkdir()
    args = ["validate", "--format=custom", f"--panoptic_json={json_path}",
            f"--label_dir={tmp_path / 'labels'}", f"--image_dir={tmp_path}", "--spec=coco"]
    assert main(args) == 1
    assert "the split is empty" in capsys.readouterr().out
    args[2] = f"--panoptic_json={tmp_path / 'nope.json'}"
    assert main(args) == 1
    assert "does not exist" in capsys.readouterr().out


def test_image_folder_and_tfrecord_problems(image_folder, coco_dataset, tmp_path):
    (image_folder / "n09999999").mkdir()
    (image_folder / "n01440764" / "broken.jpg").write_bytes(b"nope")
    report = validate_image_folder(image_folder)
    messages = "\n".join(str(p) for p in report.problems)
    assert "n09999999: class folder has no image" in messages
    assert "broken.jpg: the image cannot be read" in messages

    out = tmp_path / "tf"
    convert_coco_panoptic(out, coco_root=coco_dataset["root"], split="val2017", verbose=False)
    shard = out / "val-00000-of-00001.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-20])
    report = validate_tfrecords(out, "val")
    assert not report.ok and "val-00000-of-00001.tfrecord" in report.summary()
    assert "no split 'train'" in validate_tfrecords(out, "train").summary()

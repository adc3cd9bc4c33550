import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from keras_axial.evaluation import evaluate_coco_panoptic
from keras_axial.evaluation import read_panoptic_png
from keras_axial.evaluation import write_panoptic_png
from keras_axial.evaluation.coco_panoptic import main

from panoptic_test_data import edit_json


@pytest.fixture
def folders(coco_folders, tmp_path):
    """A private copy of the generated folders, free to break."""
    paths, _ = coco_folders
    copy = {}
    for key, path in paths.items():
        target = str(tmp_path / os.path.basename(path))
        (shutil.copytree if os.path.isdir(path) else shutil.copy)(path, target)
        copy[key] = target
    return copy


def cli_arguments(paths):
    return [
        "--gt_json", paths["gt_json"], "--gt_folder", paths["gt_folder"],
        "--pred_json", paths["pred_json"], "--pred_folder", paths["pred_folder"],
    ]


def test_cli_prints_and_writes_the_results(coco_folders, tmp_path, capsys):
    paths, _ = coco_folders
    output = tmp_path / "pq.json"
    assert main(cli_arguments(paths) + ["--output_json", str(output), "--num_workers", "1"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed == json.loads(output.read_text())
    assert "Things" in captured.err and "PQ" in captured.err  # the table
    expected = evaluate_coco_panoptic(**paths, num_workers=1)
    assert printed["All"] == expected["All"]
    assert printed["per_class"] == {str(k): v for k, v in expected["per_class"].items()}


def test_cli_as_a_module_and_default_folders(folders):
    # Folders default to the JSON paths without ".json", as in panopticapi.
    result = subprocess.run(
        [sys.executable, "-m", "keras_axial.evaluation.coco_panoptic",
         "--gt_json", folders["gt_json"], "--pred_json", folders["pred_json"]],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"All", "Things", "Stuff", "per_class"}


def _unlisted_pred_id(paths):
    png = os.path.join(paths["pred_folder"], "000000000003.png")
    ids = read_panoptic_png(png)
    ids[0, :3] = 4242
    write_panoptic_png(png, ids)
    return [png, "4242", "does not list"]


def _unlisted_gt_id(paths):
    png = os.path.join(paths["gt_folder"], "000000000002.png")
    ids = read_panoptic_png(png)
    ids[-1, -1] = 77
    write_panoptic_png(png, ids)
    return [png, "77", paths["gt_json"]]


def _unknown_category(paths):
    def edit(content):
        segment = content["annotations"][4]["segments_info"][0]
        segment["category_id"] = 999
        edit.segment = segment["id"]

    edit_json(paths["pred_json"], edit)
    return [paths["pred_json"], "image 5", f"segment {edit.segment}", "category_id 999"]


def _missing_prediction(paths):
    edit_json(paths["pred_json"], lambda content: content["annotations"].pop(6))
    return [paths["pred_json"], "no prediction for image 7", "000000000007.png"]


def _size_mismatch(paths):
    png = os.path.join(paths["pred_folder"], "000000000005.png")
    write_panoptic_png(png, read_panoptic_png(png)[:-2])
    return [png, "64x46", "64x48"]


def _listed_but_absent(paths):
    def edit(content):
        content["annotations"][0]["segments_info"].append(
            {"id": 123456, "category_id": 1, "area": 5, "bbox": [0, 0, 1, 1], "iscrowd": 0}
        )

    edit_json(paths["pred_json"], edit)
    return [paths["pred_json"], "123456", "does not contain"]


def _missing_png(paths):
    png = os.path.join(paths["gt_folder"], "000000000009.png")
    os.remove(png)
    return [png, "does not exist"]


def _duplicate_segment_id(paths):
    def edit(content):
        segments = content["annotations"][1]["segments_info"]
        segments.append(dict(segments[0]))
        edit.segment = segments[0]["id"]

    edit_json(paths["gt_json"], edit)
    return [paths["gt_json"], "image 2", "listed twice"]


@pytest.mark.parametrize(
    "break_input",
    [
        _unlisted_pred_id, _unlisted_gt_id, _unknown_category, _missing_prediction,
        _size_mismatch, _listed_but_absent, _missing_png, _duplicate_segment_id,
    ],
)
def test_malformed_input_is_a_clear_error(folders, break_input, capsys, counter):
    expected_fragments = break_input(folders)
    assert main(cli_arguments(folders) + ["--num_workers", "1"]) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: ")
    for fragment in expected_fragments:
        assert fragment in message


def test_worker_errors_reach_the_caller(folders):
    png, *_ = _unlisted_pred_id(folders)
    with pytest.raises(ValueError, match="4242"):
        evaluate_coco_panoptic(**folders, num_workers=2)


def test_folder_against_itself_is_perfect(coco_folders):
    paths, _ = coco_folders
    result = evaluate_coco_panoptic(
        paths["gt_json"], paths["gt_json"], paths["gt_folder"], paths["gt_folder"], num_workers=1
    )
    assert result["All"]["pq"] == 1.0 and result["Things"]["rq"] == 1.0
    assert np.isclose(result["Stuff"]["sq"], 1.0)

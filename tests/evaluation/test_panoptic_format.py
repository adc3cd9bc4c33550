import json
import os
import platform
import types

import numpy as np
import pytest
from PIL import Image

from keras_axial.evaluation import CityscapesPanopticWriter
from keras_axial.evaluation import CocoPanopticWriter
from keras_axial.evaluation import PanopticFormatError
from keras_axial.evaluation import evaluate_coco_panoptic
from keras_axial.evaluation import id_to_rgb
from keras_axial.evaluation import read_panoptic_annotation
from keras_axial.evaluation import read_panoptic_png
from keras_axial.evaluation import rgb_to_id
from keras_axial.evaluation import panoptic_format

from panoptic_test_data import TOY_DATASET
from panoptic_test_data import random_dataset


def test_rgb_id_round_trip():
    ids = np.array([[0, 1, 255, 256], [65535, 65536, 2**24 - 1, 123456]])
    rgb = id_to_rgb(ids)
    assert rgb.dtype == np.uint8 and rgb[0, 3].tolist() == [0, 1, 0]
    assert (rgb_to_id(rgb) == ids).all()
    with pytest.raises(ValueError, match="24-bit"):
        id_to_rgb(np.array([2**24]))


def save_rgb_rgba_and_palette_pngs(folder, ids):
    """`rgb.png`, `rgba.png` (alpha 17) and `palette.png` (adaptive palette) of `ids`."""
    rgb = id_to_rgb(ids)
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full(ids.shape, 17, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    return rgb


@pytest.mark.parametrize("decoder", ["libspng", "pillow"])
def test_read_panoptic_png_paths_agree(tmp_path, monkeypatch, decoder):
    if decoder == "pillow":
        monkeypatch.setattr(panoptic_format, "pyspng", None)
    elif platform.system() == "Linux" and platform.machine() == "x86_64":
        assert panoptic_format.pyspng is not None, "setup.py installs pyspng on this platform"
    elif panoptic_format.pyspng is None:
        pytest.skip("no pyspng wheel for this platform: Pillow decodes (the 'pillow' case)")
    ids = np.random.default_rng(0).integers(0, 2**24, size=(7, 5))
    rgb = save_rgb_rgba_and_palette_pngs(tmp_path, ids)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).convert("RGB").save(
        tmp_path / "reference.png"
    )
    assert (read_panoptic_png(tmp_path / "rgb.png") == ids).all()
    assert (read_panoptic_png(tmp_path / "rgba.png") == ids).all()
    buffer = np.zeros(35, np.uint32)
    assert read_panoptic_png(tmp_path / "rgb.png", out=buffer).base is buffer  # reused
    assert (buffer.reshape(7, 5) == ids).all()
    assert (read_panoptic_png(tmp_path / "rgb.png", out=np.zeros(9, np.uint32)) == ids).all()
    assert (read_panoptic_png(tmp_path / "palette.png") == read_panoptic_png(tmp_path / "reference.png")).all()
    # Without Pillow's zero-copy export the slower path gives the same ids.
    monkeypatch.setattr(panoptic_format, "_ids_from_pixel_memory", lambda image, out: None)
    assert (read_panoptic_png(tmp_path / "rgb.png") == ids).all()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "gray.png")
    with pytest.raises(PanopticFormatError, match="mode 'L'"):
        read_panoptic_png(tmp_path / "gray.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(PanopticFormatError, match="broken.png"):
        read_panoptic_png(tmp_path / "broken.png")
    # A valid header with a cut-off image stream: Pillow names the file.
    (tmp_path / "truncated.png").write_bytes((tmp_path / "rgb.png").read_bytes()[:60])
    with pytest.raises(PanopticFormatError, match="truncated.png"):
        read_panoptic_png(tmp_path / "truncated.png")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_panoptic_png(tmp_path / "missing.png")


def _expected_segments(panoptic, category_ids):
    segments = {}
    for value in np.unique(panoptic):
        semantic, instance = divmod(int(value), 256)
        if semantic == 255:
            continue
        ys, xs = np.nonzero(panoptic == value)
        segments[value] = {
            "category_id": category_ids[semantic],
            "area": ys.size,
            "bbox": [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1],
            "iscrowd": int(semantic in TOY_DATASET["thing_class_ids"] and instance == 0),
        }
    return segments


def test_coco_writer_files_and_round_trip(tmp_path):
    pairs = random_dataset(seed=3, num_images=4)
    maps = [gt for gt, _ in pairs]
    gt_json, gt_folder = str(tmp_path / "out.json"), str(tmp_path / "out")
    with CocoPanopticWriter(gt_json, gt_folder, TOY_DATASET) as writer:
        for image_id, panoptic in enumerate(maps, start=1):
            writer.write(image_id, panoptic)
    content = json.loads(open(gt_json).read())
    assert [c["id"] for c in content["categories"]] == TOY_DATASET["category_ids"]
    assert content["images"][0] == {"id": 1, "width": 64, "height": 48, "file_name": "000000000001.jpg"}
    for panoptic, annotation in zip(maps, content["annotations"]):
        ids = read_panoptic_png(os.path.join(gt_folder, annotation["file_name"]))
        expected = _expected_segments(panoptic, TOY_DATASET["category_ids"])
        listed = {s["id"] for s in annotation["segments_info"]}
        assert len(listed) == len(expected) and 0 not in listed
        assert set(np.unique(ids)) <= listed | {0}
        for segment in annotation["segments_info"]:
            value = int(np.unique(panoptic[ids == segment["id"]])[0])  # one label per segment
            want = expected[value]
            assert segment["category_id"] == want["category_id"]
            assert segment["area"] == want["area"] and segment["iscrowd"] == want["iscrowd"]
            assert segment["bbox"] == [int(v) for v in want["bbox"]]
            if not want["iscrowd"] and value // 256 in (3, 4, 5, 6):  # stuff keeps its color
                color = TOY_DATASET["colors"][value // 256]
                assert segment["id"] == color[0] + 256 * color[1] + 65536 * color[2]
        # Read back: identical label map (instance ids in the generator are consecutive).
        back = read_panoptic_annotation(
            os.path.join(gt_folder, annotation["file_name"]), annotation["segments_info"], TOY_DATASET
        )
        assert (back == panoptic).all()
    result = evaluate_coco_panoptic(gt_json, gt_json, gt_folder, gt_folder, num_workers=1)
    assert result["All"]["pq"] == pytest.approx(1.0, abs=1e-12)


def test_cityscapes_writer_ids_and_round_trip(tmp_path):
    cityscapes = types.SimpleNamespace(  # duck-typed: any object with these attributes
        class_names=[f"c{k}" for k in range(19)],
        thing_class_ids=list(range(11, 19)),
        label_divisor=1000,
        ignore_label=255,
        category_ids=[7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33],
    )
    panoptic = np.full((30, 40), 0, np.int32)  # road
    panoptic[:, 30:] = 10 * 1000  # sky
    panoptic[5:15, 5:15] = 13 * 1000 + 3  # car #3
    panoptic[20:28, 5:15] = 13 * 1000  # car crowd
    panoptic[:2, :2] = 255 * 1000  # void
    json_path, folder = str(tmp_path / "cs.json"), str(tmp_path / "cs")
    with CityscapesPanopticWriter(json_path, folder, cityscapes) as writer:
        annotation = writer.write("frankfurt_000000_000294", panoptic)
    assert annotation["file_name"] == "frankfurt_000000_000294_gtFine_panoptic.png"
    segments = {s["id"]: s for s in annotation["segments_info"]}
    assert set(segments) == {7, 23, 26003, 26}
    assert segments[26]["iscrowd"] == 1 and segments[26003]["iscrowd"] == 0
    assert segments[26003]["category_id"] == 26 and segments[26003]["area"] == 100
    ids = read_panoptic_png(os.path.join(folder, annotation["file_name"]))
    assert ids[10, 10] == 26003 and ids[0, 0] == 0
    content = json.loads(open(json_path).read())
    assert content["images"] == [
        {"id": "frankfurt_000000_000294", "width": 40, "height": 30,
         "file_name": "frankfurt_000000_000294_leftImg8bit.png"}
    ]
    back = read_panoptic_annotation(os.path.join(folder, annotation["file_name"]),
                                    annotation["segments_info"], cityscapes)
    expected = panoptic.copy()
    expected[5:15, 5:15] = 13 * 1000 + 1  # instances come back numbered from 1
    assert (back == expected).all()
    result = evaluate_coco_panoptic(json_path, json_path, folder, folder, num_workers=1)
    assert result["All"]["pq"] == 1.0
    cityscapes.label_divisor = 2000  # instance ids up to 1999 cannot be written
    with pytest.raises(ValueError, match="below 1000"):
        with CityscapesPanopticWriter(str(tmp_path / "x.json"), str(tmp_path / "x"), cityscapes) as w:
            w.write("a", np.full((2, 2), 13 * 2000 + 1500))


def test_writer_is_atomic_and_validates(tmp_path):
    json_path = tmp_path / "pred.json"
    with pytest.raises(ValueError, match="class"):
        with CocoPanopticWriter(json_path, tmp_path / "pred", TOY_DATASET) as writer:
            writer.write(1, np.zeros((4, 4), np.int32))
            writer.write(2, np.full((4, 4), 50 * 256))  # unknown class
    assert not json_path.exists()  # no JSON for a failed run
    assert not [p for p in os.listdir(tmp_path / "pred") if p.endswith(".tmp")]
    with CocoPanopticWriter(json_path, tmp_path / "pred", TOY_DATASET) as writer:
        writer.write(1, np.zeros((4, 4), np.int32))
        with pytest.raises(ValueError, match="already written"):
            writer.write(1, np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match="unique"):
        CocoPanopticWriter(tmp_path / "a.json", tmp_path / "a", TOY_DATASET, category_ids=[1] * 7)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CocoPanopticWriter(tmp_path / "no" / "a.json", tmp_path / "a", TOY_DATASET)


def test_libspng_decodes_rgb_and_rgba_and_leaves_the_rest_to_pillow(tmp_path):
    if panoptic_format.pyspng is None:
        pytest.skip("no pyspng wheel for this platform: Pillow decodes everything")
    ids = np.random.default_rng(1).integers(0, 2**24, size=(9, 11))
    save_rgb_rgba_and_palette_pngs(tmp_path, ids)
    for name in ("rgb.png", "rgba.png"):
        decoded = panoptic_format._ids_with_libspng((tmp_path / name).read_bytes())
        assert decoded.dtype == np.uint32 and (decoded == ids).all(), name
    assert panoptic_format._ids_with_libspng((tmp_path / "palette.png").read_bytes()) is None
    assert panoptic_format._ids_with_libspng(b"not a png") is None
    assert panoptic_format._ids_with_libspng((tmp_path / "rgb.png").read_bytes()[:60]) is None

"""Tests for `keras_axial.data.DatasetSpec` and its presets."""

import subprocess
import sys

import pytest

from keras_axial.data import DatasetSpec, get_dataset_spec, list_dataset_specs
from keras_axial.data.dataset_spec import register_dataset_spec


def _toy(**overrides):
    kwargs = dict(
        name="toy", class_names=["grass", "sky", "cow"], thing_class_ids=[2], label_divisor=256
    )
    kwargs.update(overrides)
    return DatasetSpec(**kwargs)


def test_derived_fields_and_json_round_trip(tmp_path):
    spec = _toy(colors=[[1, 2, 3], (4, 5, 6), (7, 8, 9)], category_ids=[10, 20, 30])
    assert spec.num_classes == 3
    assert spec.stuff_class_ids == (0, 1)
    assert spec.colors[0] == (1, 2, 3)
    assert spec.is_thing(2) and not spec.is_thing(0)
    assert spec.class_id("sky") == 1
    assert DatasetSpec.from_json(spec.to_json()) == spec
    spec.save(tmp_path / "spec.json")
    assert DatasetSpec.load(tmp_path / "spec.json") == spec
    assert get_dataset_spec(str(tmp_path / "spec.json")) == spec
    spec.save(tmp_path / "dataset_spec.json")
    assert get_dataset_spec(tmp_path) == spec  # a converted dataset folder
    categories = spec.to_coco_categories()
    assert categories[2] == {"id": 30, "name": "cow", "isthing": 1, "color": [7, 8, 9]}
    assert DatasetSpec.from_coco_categories(categories, name="toy") == spec


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(name=""), "name"),
        (dict(class_names=[]), "class_names"),
        (dict(class_names=["a", "a", "b"]), "unique"),
        (dict(thing_class_ids=[3]), "thing_class_ids"),
        (dict(thing_class_ids=[2, 2]), "repeated"),
        (dict(label_divisor=1), "label_divisor"),
        (dict(ignore_label=2), "ignore_label"),
        (dict(ignore_label=70000), "24-bit"),
        (dict(colors=[(0, 0, 0)]), "colors"),
        (dict(colors=[(0, 0, 0), (0, 0, 0), (0, 0, 256)]), "0..255"),
        (dict(category_ids=[1, 1, 2]), "unique"),
    ],
)
def test_validation_errors_say_what_is_wrong(overrides, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _toy(**overrides)


def test_presets():
    coco = get_dataset_spec("coco")
    assert coco.num_classes == 133 and len(coco.thing_class_ids) == 80
    assert coco.thing_class_ids == tuple(range(80))
    assert (coco.label_divisor, coco.ignore_label) == (256, 255)
    assert coco.category_ids[0] == 1 and coco.category_ids[-1] == 200
    assert coco.class_names[coco.category_ids.index(199)] == "wall-other-merged"
    assert get_dataset_spec("coco_panoptic") is coco

    cityscapes = get_dataset_spec("cityscapes")
    assert cityscapes.num_classes == 19
    assert cityscapes.thing_class_ids == tuple(range(11, 19))
    assert (cityscapes.label_divisor, cityscapes.ignore_label) == (1000, 255)
    assert cityscapes.category_ids[cityscapes.class_id("car")] == 26

    mapillary = get_dataset_spec("mapillary_vistas")
    assert mapillary.num_classes == 65 and len(mapillary.thing_class_ids) == 37

    synthetic = get_dataset_spec("synthetic")
    assert len(synthetic.stuff_class_ids) >= 3 and len(synthetic.thing_class_ids) >= 3
    assert {"coco", "cityscapes", "mapillary_vistas", "synthetic"} <= set(list_dataset_specs())

    with pytest.raises(ValueError, match="Unknown dataset spec 'kitti'"):
        get_dataset_spec("kitti")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset_spec(_toy(name="coco"))


def test_import_is_cheap():
    code = (
        "import sys; from keras_axial.data import DatasetSpec, get_dataset_spec; "
        "get_dataset_spec('coco'); "
        "print('tensorflow' in sys.modules or 'numpy' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "False"

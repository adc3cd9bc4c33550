"""gin/data/*.gin parse with the registered builders and build their pipelines on generated data."""

import pathlib

import gin
import pytest

import keras_axial.gin_bindings  # noqa: F401  (registers the builders)

GIN_DATA = pathlib.Path(__file__).resolve().parents[2] / "gin" / "data"


def _build(scope, name, **call):
    with gin.config_scope(scope):
        return gin.get_configurable(name)(**call)


@pytest.mark.parametrize("name", ["coco", "cityscapes", "mapillary", "synthetic"])
def test_panoptic_gin_files(name, synthetic_tfrecords):
    gin.clear_config()
    try:
        gin.parse_config_file(str(GIN_DATA / f"{name}.gin"))
        # What an experiment adds: the data location, crop and splits.
        gin.parse_config(
            [
                f"DATA_DIR = '{synthetic_tfrecords}'",
                "train/panoptic_input_fn.crop_size = (33, 33)",
                "train/panoptic_input_fn.photometric_num_ops = 0",  # faster to trace
                "eval/panoptic_input_fn.split = 'val'",
                "eval/panoptic_input_fn.training = False",
            ]
        )
        images, targets = next(iter(_build("train", "panoptic_input_fn", batch_size=2, seed=0)))
        assert images.shape == (2, 33, 33, 3) and targets["offsets"].shape == (2, 33, 33, 2)
        if name != "cityscapes":  # its eval_size is for 1024 x 2048 images
            images, targets = next(iter(_build("eval", "panoptic_input_fn", batch_size=1)))
            assert "panoptic" in targets
    finally:
        gin.clear_config()


def test_imagenet_gin_file(image_folder):
    gin.clear_config()
    try:
        gin.parse_config_file(str(GIN_DATA / "imagenet.gin"))
        gin.parse_config([f"TRAIN_SOURCE = '{image_folder}'", f"EVAL_SOURCE = '{image_folder}'",
                          "train/classification_input_fn.image_size = 32",
                          "eval/classification_input_fn.training = False"])
        images, labels = next(iter(_build("train", "classification_input_fn", batch_size=4)))
        assert images.shape == (4, 32, 32, 3) and labels.shape == (4,)
        images, labels = next(iter(_build("eval", "classification_input_fn", batch_size=4)))
        assert images.shape == (4, 224, 224, 3)
    finally:
        gin.clear_config()

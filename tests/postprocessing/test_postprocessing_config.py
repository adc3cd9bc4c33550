"""PostProcessingConfig, and the gin builders of the losses and post-processing section."""

import inspect

import gin
import numpy as np
import pytest

from keras_axial.data import DatasetSpec
from keras_axial.losses import PanopticLoss
from keras_axial.postprocessing import PostProcessingConfig
from keras_axial.postprocessing import panoptic_deeplab_postprocess


def test_config_validates_normalises_and_round_trips():
    config = PostProcessingConfig(thing_class_ids=(3, 1), label_divisor=1000, void_label=255)
    assert config.thing_class_ids == (1, 3)
    assert PostProcessingConfig(**config.as_kwargs()) == config
    with pytest.raises(ValueError, match="nms_kernel"):
        PostProcessingConfig(thing_class_ids=[1], label_divisor=1000, void_label=255, nms_kernel=8)
    with pytest.raises(ValueError, match="keep_k_centers"):
        PostProcessingConfig(
            thing_class_ids=[1], label_divisor=256, void_label=255, keep_k_centers=400
        )


def test_config_from_dataset_spec_and_call():
    spec = DatasetSpec("toy", ["grass", "sky", "cow"], thing_class_ids=[2], label_divisor=256)
    config = PostProcessingConfig.from_dataset_spec(spec, nms_kernel=3, stuff_area_limit=1)
    assert (config.thing_class_ids, config.label_divisor, config.void_label) == ((2,), 256, 255)
    rng = np.random.default_rng(0)
    predictions = {
        "semantic_logits": rng.normal(size=(1, 6, 7, 3)).astype("float32"),
        "center_heatmap": rng.uniform(size=(1, 6, 7, 1)).astype("float32"),
        "offsets": rng.normal(size=(1, 6, 7, 2)).astype("float32"),
    }
    expected = panoptic_deeplab_postprocess(*predictions.values(), **config.as_kwargs())
    for key, value in config(predictions).items():
        np.testing.assert_array_equal(value, expected[key])
    with pytest.raises(ValueError, match="offsets"):
        config({"semantic_logits": 0, "center_heatmap": 0})


def test_gin_builders_match_the_library_defaults():
    from keras_axial import gin_bindings

    for builder, target in [
        (gin_bindings._panoptic_loss, PanopticLoss.__init__),
        (gin_bindings._postprocessing_config, PostProcessingConfig),
    ]:
        defaults = {
            name: p.default
            for name, p in inspect.signature(target).parameters.items()
            if name not in ("self", "reduction", "name")
        }
        assert {n: p.default for n, p in inspect.signature(builder).parameters.items()} == defaults

    with gin.unlock_config():
        gin.parse_config(
            """
            panoptic_loss.center_weight = 100.0
            postprocessing_config.thing_class_ids = [11, 12]
            postprocessing_config.label_divisor = 1000
            postprocessing_config.void_label = 255
            postprocessing_config.nms_kernel = 13
            """
        )
    try:
        loss = gin_bindings.panoptic_loss()
        config = gin_bindings.postprocessing_config()
    finally:
        gin.clear_config()
    assert type(loss) is PanopticLoss and loss.center_weight == 100.0
    assert config == PostProcessingConfig(
        thing_class_ids=[11, 12], label_divisor=1000, void_label=255, nms_kernel=13
    )

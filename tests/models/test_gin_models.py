"""Every file in gin/models parses, and each size file builds (tiny) the model it names."""

import pathlib

import gin
import pytest

from keras_axial import gin_bindings, models

GIN_MODELS = pathlib.Path(__file__).resolve().parents[2] / "gin" / "models"
SIZE_FILES = sorted(p for p in GIN_MODELS.glob("*.gin") if p.stem in models.list_models())


def test_every_registered_model_has_a_size_file_and_every_file_is_one_or_a_base():
    assert [p.stem for p in SIZE_FILES] == models.list_models()
    bases = {p.stem for p in GIN_MODELS.glob("*.gin")} - set(models.list_models())
    assert bases == {"axial_resnet", "full_axial_resnet", "axial_deeplab"}


@pytest.mark.parametrize("path", SIZE_FILES, ids=lambda p: p.stem)
def test_size_file_builds_its_model(path):
    gin.clear_config()
    gin.add_config_file_search_path(str(GIN_MODELS.parent.parent))
    try:
        gin.parse_config_file(str(path))
        assert gin.query_parameter("%MODEL_NAME") == path.stem
        # Explicit arguments win over gin bindings: the tiny overrides keep this fast.
        model = gin_bindings.get_model(**models.tiny_overrides(path.stem))
    finally:
        gin.clear_config()
    assert model.name == path.stem
    expected_classes = 1000 if models.get_variant(path.stem).task == "classifier" else 19
    assert model.num_classes == expected_classes

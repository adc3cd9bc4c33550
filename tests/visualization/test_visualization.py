import types

import numpy as np
import pytest
from PIL import Image

from keras_axial.visualization import colorize_panoptic
from keras_axial.visualization import colorize_semantic
from keras_axial.visualization import colormap
from keras_axial.visualization import dataset_info
from keras_axial.visualization import figure_to_array
from keras_axial.visualization import generate_palette
from keras_axial.visualization import instance_colors
from keras_axial.visualization import overlay
from keras_axial.visualization import panoptic_colors
from keras_axial.visualization import save_png
from keras_axial.visualization import segment_boundaries
from keras_axial.visualization import side_by_side_figure

TOY = types.SimpleNamespace(  # duck-typed: no DatasetSpec needed
    class_names=["grass", "sky", "cow", "dog"],
    thing_class_ids=[2, 3],
    label_divisor=100,
    ignore_label=255,
)


def test_official_palettes_come_from_the_dataset_presets():
    cityscapes = colormap("cityscapes")
    assert cityscapes.shape == (19, 3) and cityscapes.dtype == np.uint8
    assert cityscapes[0].tolist() == [128, 64, 128]  # road
    assert cityscapes[11].tolist() == [220, 20, 60]  # person
    assert cityscapes[18].tolist() == [119, 11, 32]  # bicycle
    coco = colormap("coco")
    assert coco.shape == (133, 3)
    assert coco[0].tolist() == [220, 20, 60] and coco[132].tolist() == [250, 141, 255]


def test_generated_palette_and_instance_colors():
    palette = generate_palette(200)
    assert (palette == generate_palette(200)).all()
    assert len({tuple(c) for c in palette}) == 200 and palette.sum(axis=1).min() > 0
    assert (colormap(TOY) == generate_palette(4)).all()

    base = np.array([[100, 150, 200]] * 50, np.uint8)
    colors = instance_colors(base, np.arange(1, 51))
    assert (colors == instance_colors(base, np.arange(1, 51))).all()  # deterministic
    assert len({tuple(c) for c in colors}) == 50
    assert np.abs(colors.astype(int) - base).max() <= 48
    assert (instance_colors(base[0], 7, salt=1) != instance_colors(base[0], 7)).any()


def test_panoptic_and_semantic_colors():
    info = dataset_info({**vars(TOY), "colors": [(0, 200, 0), (0, 0, 200), (200, 0, 0), (9, 9, 9)]})
    ids = np.array([0, 100, 200, 201, 202, 25500])
    colors = panoptic_colors(ids, info)
    assert colors[0].tolist() == [0, 200, 0] and colors[1].tolist() == [0, 0, 200]
    assert colors[2].tolist() == [200, 0, 0]  # crowd region: the class color
    assert colors[3].tolist() != [200, 0, 0] and colors[3].tolist() != colors[4].tolist()
    assert colors[5].tolist() == [0, 0, 0]  # void
    semantic = np.array([[0, 1], [255, 3]])
    assert colorize_semantic(semantic, info)[1, 0].tolist() == [0, 0, 0]
    assert colorize_semantic(semantic, info)[1, 1].tolist() == [9, 9, 9]
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        colorize_semantic(np.array([[7]]), info)
    with pytest.raises(ValueError, match="label_divisor"):
        colorize_panoptic(np.array([[900]]), info)
    with pytest.raises(TypeError, match="lacks `thing_class_ids`"):
        colormap({"class_names": ["a"]})


def test_overlay_and_boundaries():
    image = np.full((6, 8, 3), 100, np.uint8)
    panoptic = np.zeros((6, 8), np.int32)
    panoptic[:, 4:] = 201
    panoptic[0, 0] = 25500  # void
    edges = segment_boundaries(panoptic)
    assert edges[3, 3] and not edges[3, 4] and not edges[3, 6]
    result = overlay(image, panoptic, TOY, alpha=1.0, boundaries=False)
    assert result[0, 0].tolist() == [100, 100, 100]  # void shows the image
    assert (result[5, 6] == colorize_panoptic(panoptic, TOY)[5, 6]).all()
    assert (overlay(image.astype(np.float32), panoptic, TOY, alpha=0.0, boundaries=False) == image).all()
    assert overlay(image, panoptic, TOY)[3, 3].tolist() == [255, 255, 255]
    semantic = overlay(image, panoptic // 100, TOY, label_type="semantic", alpha=1.0)
    assert semantic.shape == (6, 8, 3)
    with pytest.raises(ValueError, match="same height and width"):
        overlay(image, panoptic[:5], TOY)


def test_side_by_side_figure_and_save_png(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (30, 40, 3)).astype(np.float32)
    ground_truth = np.zeros((30, 40), np.int32)
    ground_truth[5:15, 5:15] = 201
    prediction = np.full((30, 40), 100, np.int32)
    prediction[5:15, 5:15] = 301
    figure = side_by_side_figure(image, ground_truth, prediction, TOY, panel_width=2.0, dpi=50)
    assert len(figure.axes) == 3
    assert [ax.get_title() for ax in figure.axes] == ["Image", "Ground truth", "Prediction"]
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == ["grass", "sky", "cow", "dog"]  # classes present in gt or prediction
    pixels = figure_to_array(figure)
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[1] == 300

    single = side_by_side_figure(image, None, prediction, TOY, legend=False)
    assert len(single.axes) == 2 and not single.legends

    save_png(tmp_path / "figure.png", figure)
    save_png(tmp_path / "overlay.png", overlay(image, prediction, TOY))
    assert Image.open(tmp_path / "figure.png").size == (300, pixels.shape[0])
    assert Image.open(tmp_path / "overlay.png").size == (40, 30)
    with pytest.raises(ValueError, match="uint8"):
        save_png(tmp_path / "bad.png", np.zeros((4, 4)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "overlay.png"]

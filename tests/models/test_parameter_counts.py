"""Exact parameter and M-Adds pins of every full-size registered model (a cheap, strong
regression check), and their distance to the paper's numbers."""

import pytest

from keras_axial import models
from keras_axial.utils import count_madds, count_params

# name: (trainable parameters, M-Adds of one image, input size). Default classes: 1000 for
# classifiers, 19 (Cityscapes) for Axial-DeepLab, whose pins are at Cityscapes' 1025x2049.
PINS = {
    "axial_resnet_s": (12_273_320, 2_637_170_688, (224, 224)),
    "axial_resnet_m": (26_210_056, 5_530_881_024, (224, 224)),
    "axial_resnet_l": (45_347_688, 9_474_674_688, (224, 224)),
    "axial_resnet_xl": (173_907_176, 35_750_682_624, (224, 224)),
    "full_axial_resnet_26": (6_367_728, 2_612_785_152, (224, 224)),
    "full_axial_resnet_50": (12_364_336, 3_510_383_616, (224, 224)),
    "axial_deeplab_s": (12_168_518, 213_011_886_480, (1025, 2049)),
    "axial_deeplab_m": (25_911_174, 409_279_804_896, (1025, 2049)),
    "axial_deeplab_l": (44_871_622, 675_415_103_536, (1025, 2049)),
    "axial_deeplab_xl": (172_891_334, 2_438_630_100_336, (1025, 2049)),
}
# Building a full-size model costs about a second per 2.5M parameters (variable
# initialization); the S-sized ones run in the fast suite, the rest with `make test-slow`.
FAST = ("axial_resnet_s", "full_axial_resnet_26", "full_axial_resnet_50", "axial_deeplab_s")
# (params, M-Adds) tolerances against the paper, from the issues.
TOLERANCES = {"classifier": (0.05, 0.10), "panoptic": (0.03, 0.05)}


def test_every_registered_model_is_pinned():
    assert sorted(PINS) == models.list_models()


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in sorted(PINS)]
)
def test_full_size_counts(name):
    params, madds, size = PINS[name]
    model = models.get_model(name)
    assert count_params(model) == params
    assert count_madds(model, (1, *size, 3)) == madds
    variant = models.get_variant(name)
    for reference in variant.references:
        if reference.input_size == size and not reference.overrides and (
            reference.num_classes == model.num_classes
        ):
            params_tolerance, madds_tolerance = TOLERANCES[variant.task]
            assert abs(params / reference.params - 1) <= params_tolerance, reference
            assert abs(madds / reference.madds - 1) <= madds_tolerance, reference


def test_counts_agree_with_a_hand_computation():
    """A small conv-stem classifier, counted by hand from the architecture."""
    model = models.get_model(
        "axial_resnet_s", width_multiplier=0.125, block_repeats=(1, 1, 1, 1), max_span=4,
        num_classes=10,
    )
    params, madds = 0, 0
    # Stem: 7x7/2 conv (8 channels) + BN, max-pool: 32x32 -> 16x16 -> 8x8.
    params += 7 * 7 * 3 * 8 + 2 * 8
    madds += 16 * 16 * 7 * 7 * 3 * 8
    size, channels = 8, 8
    for stage in range(4):
        f = 8 * 2**stage  # keys f, values 2f, output 4f; 8 heads
        stride = 1 if stage == 0 else 2
        out = (size + stride - 1) // stride
        # conv1 + BN
        params += channels * 2 * f + 2 * 2 * f
        madds += size * size * channels * 2 * f
        # Two axial layers: qkv projection + BN, 3 similarity BNs (8 heads), 2 output BNs,
        # tables of 2 * 4 - 1 = 7 rows (query and key tables f / 8 deep, value table 2f / 8).
        per_layer = 2 * f * 4 * f + 2 * 4 * f + 2 * 3 * 8 + 2 * 2 * 2 * f + 7 * (4 * f // 8)
        params += 2 * per_layer
        # Height layer at full size, width layer after striding the rows; global attention:
        # every query sees the whole axis (projection + 3 similarity + 2 retrieval terms).
        for rows, length in ((size, size), (out, size)):
            madds += rows * length * (2 * f * 4 * f + length * (3 * f + 2 * 2 * f))
        # conv3 + BN, projection shortcut + BN
        params += 2 * f * 4 * f + 2 * 4 * f + channels * 4 * f + 2 * 4 * f
        madds += out * out * (2 * f * 4 * f + channels * 4 * f)
        size, channels = out, 4 * f
    params += channels * 10 + 10
    madds += channels * 10
    assert count_params(model) == params
    assert count_madds(model, (1, 32, 32, 3)) == madds

"""Every layer: shapes, config, `.keras` round trip, XLA, mixed precision, M-Adds."""

import pytest

from keras_axial import layers
from tests.layers.helpers import check_layer_contract

CASES = {
    "attention_height_global": (lambda: layers.AxialAttention(8, 16, num_heads=2),
                                (2, 9, 7, 8)),
    "attention_width_local_blocked": (
        lambda: layers.AxialAttention(8, 16, num_heads=2, span=5, axis=2, query_block_size=3),
        (2, 6, 11, 8)),
    "attention_sequence_local": (lambda: layers.AxialAttention(8, 8, num_heads=4, span=3),
                                 (3, 10, 6)),
    "attention_2d_pool": (lambda: layers.AxialAttention2D(8, 16, num_heads=2, strides=2),
                          (2, 9, 7, 8)),
    "attention_2d_slice_local": (
        lambda: layers.AxialAttention2D(8, 16, num_heads=2, span=5, strides=2,
                                        stride_mode="slice"), (2, 9, 7, 8)),
    "axial_block": (lambda: layers.AxialBlock(4, num_heads=2, strides=2, span=5,
                                              drop_path_rate=0.2), (2, 9, 7, 8)),
    "bottleneck_block": (lambda: layers.BottleneckBlock(4, strides=2, drop_path_rate=0.1),
                         (2, 9, 7, 8)),
    "conv_stem": (lambda: layers.ConvStem(8), (2, 17, 17, 3)),
    "inception_stem": (lambda: layers.InceptionStem((4, 4, 8)), (2, 17, 17, 3)),
    "full_axial_stem": (lambda: layers.FullAxialStem(filters=2, num_blocks=2, span=3,
                                                     num_heads=2),
                        (2, 17, 17, 3)),
    "drop_path": (lambda: layers.DropPath(0.3), (4, 5, 5, 3)),
}
# One XLA training step (the costliest check) for the block: it covers local attention, the
# 2D layer, batch statistics, drop path and the shortcut.
TRAIN_STEP = {"axial_block"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_contract(case, tmp_path):
    factory, shape = CASES[case]
    check_layer_contract(factory, shape, tmp_path, train_step=case in TRAIN_STEP)

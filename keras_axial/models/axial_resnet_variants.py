"""The variant table: the only place where Axial-ResNet and Axial-DeepLab sizes are defined.

Every registered model is written as its difference from a default (deeplab2 style); the
registry (`keras_axial.models.registry`) resolves `defaults + row + user overrides` and logs the
result. Builders and gin files refer to rows by name.

Defaults (`BACKBONE_DEFAULTS`) are the paper's Axial-ResNet at width 1.0 ("L"): ResNet-50 layout
[3, 4, 6, 3], 7x7 conv stem + 3x3 max-pool, all four stages axial, 8 heads, global attention,
output stride 32. Task defaults are in `CLASSIFIER_DEFAULTS` (global pooling + dense layer) and
`PANOPTIC_DEFAULTS` (the Panoptic-DeepLab dual decoder without ASPP, SPEC section 4).

Choices the paper leaves open, and why each value was taken (SPEC decision 3: take the one that
matches the paper's parameter and M-Adds tables):

- **Relative-position tables: `max_span = 200`, i.e. 2 * 200 - 1 = 399 rows per table, for every
  variant and span.** The paper's parameter counts do not change with the span (T7), so its
  tables are sized independently of it. Solving "count == paper" for the table size gives 362
  (S), 395 (M), 407 (L) and 413 (XL) rows for Axial-DeepLab; 399 rows puts all four within 0.6% of
  the paper (S +0.6%, M +0.0%, L -0.1%, XL -0.1% at 1025x2049). The alternatives are further
  off: 129 rows (2 * 65 - 1, the smallest that covers span 65) gives S -3.7% and M -2.9%;
  deeplab2's 509 rows (`max_span=255`, needed to load deeplab2 checkpoints) gives S +2.3%.
  Offsets beyond +-199 (global attention on axes longer than 200 pixels) share the end rows.
- **Stems are scaled by the width multiplier** ("we multiply all the channels", P section 4.1;
  the authors' PyTorch code does the same). Unscaled, Axial-DeepLab-S would cost 256.5B M-Adds at
  1025x2049 (paper 220.8B, +16%); scaled, 213.0B (-3.5%). XL is the one the M-Adds leave
  ambiguous (-8.0% unscaled, -0.3% scaled); scaled it is, like the others.
- **Max-pool after the Inception stem** (as in the TF resnet_v1_beta stem the paper cites): without
  it every stage would run at twice the resolution, far above the paper's M-Adds.
- **Striding after each axis** (`stride_mode="pool"`, P section 3.2: "striding is performed on
  each axis after the corresponding axial-attention layer"): the width attention of a strided
  block runs at the already reduced height.

Remaining gaps against the paper (benchmarks/model_table.py prints them):

- Conv-stem Axial-ResNet-S classifier (T1: 12.4M / 2.8B at 224x224): ours is 12.27M (-1.0%) and
  2.64B (-5.8%). The parameter gap is the unknown table size (399 rows fit the Axial-DeepLab
  rows; the classifier row alone would want ~465). The M-Adds gap is the striding: the authors'
  PyTorch code runs the width attention of a strided block at full resolution and average-pools
  afterwards, which charges 2.84B; striding after each axis as the paper describes saves the
  difference. `stride_mode="slice"` (deeplab2) costs the same as `"pool"`.
- Full Axial-ResNet-50 (T1 "Full Axial-Attention": 12.5M / 3.3B): ours is 12.36M (-1.1%) and
  3.51B (+6.4%). The paper gives neither the stem blocks' width nor whether they use span 15 or
  SASA-style square windows (P sections 3.2 and 4.1 differ); the width was chosen to come
  closest (see `_FULL_AXIAL`). Full Axial-ResNet-26 has no paper numbers (Fig. 3 only).
- Axial-DeepLab (T2 / T6 / T7): within 0.8% of the paper's parameters and 3.6% of its M-Adds;
  every M-Adds figure is 0.3-3.5% below the paper's, consistent with the same striding
  difference (largest for S, whose stem and first stage weigh most).

Any value here can be overridden per call: `get_model("axial_deeplab_l", span=33)`.
"""

import dataclasses

# The paper's Axial-ResNet-L classification backbone. Every key is an `AxialResNetBackbone`
# constructor argument.
BACKBONE_DEFAULTS = {
    "block_repeats": (3, 4, 6, 3),
    "width_multiplier": 1.0,
    "stem": "conv",
    # None: scale the stem like every other channel (see the module docstring).
    "stem_width_multiplier": None,
    # None: global attention.
    "span": None,
    "max_span": 200,
    "num_heads": 8,
    "output_stride": 32,
    "stride_mode": "pool",
    "drop_path_rate": 0.0,
    "batch_norm_momentum": 0.99,
    "batch_norm_epsilon": 1e-3,
    "sync_batch_norm": False,
    # Speed knob of local attention; None lets the layer choose (results do not depend on it).
    "query_block_size": None,
    # None dimensions: any input size. Export may fix them, e.g. (1025, 2049, 3).
    "image_shape": (None, None, 3),
}

# `AxialResNetClassifier` arguments: global average pooling, then a dense layer (ImageNet-1K).
CLASSIFIER_DEFAULTS = {
    "num_classes": 1000,
    "dropout_rate": 0.0,
}

# `AxialDeepLab` arguments: Panoptic-DeepLab's dual decoder without ASPP (SPEC section 4).
PANOPTIC_DEFAULTS = {
    # Cityscapes' 19 train ids: the dataset of every ablation in the paper.
    "num_classes": 19,
    # The 1x1 projection of res5 that replaces ASPP, in each decoder.
    "projection_channels": 256,
    "semantic_decoder_channels": 256,
    # 1x1 projections of res3 (stride 8) and res2 (stride 4) before fusion.
    "semantic_low_level_channels": (64, 32),
    "instance_decoder_channels": 128,
    "instance_low_level_channels": (32, 16),
    "semantic_head_channels": 256,
    "instance_head_channels": 32,
}


@dataclasses.dataclass(frozen=True)
class PaperReference:
    """One row of a paper table that a variant is compared with.

    Attributes:
        table: where the numbers come from, e.g. `"T1"` or `"T6 (Cityscapes)"`.
        input_size: `(height, width)` the M-Adds are counted at.
        num_classes: number of classes of the model counted.
        params: the paper's parameter count.
        madds: the paper's multiply-adds at `input_size`.
        overrides: extra overrides for this row (e.g. the span of the T7 ablation).
    """

    table: str
    input_size: tuple
    num_classes: int
    params: float
    madds: float
    overrides: tuple = ()


@dataclasses.dataclass(frozen=True)
class ModelVariant:
    """A registered model: its task, its difference from the defaults, its paper numbers.

    Attributes:
        name: registered name.
        task: `"classifier"` or `"panoptic"`.
        description: one line, the variant as the paper names it.
        changes: `{argument: value}` differences from the task's defaults.
        tiny_changes: further changes giving a seconds-to-build version (tests, notebooks, demo).
        references: `PaperReference` rows this variant is compared with (may be empty).
        default_input_size: input `(height, width)` the model table counts it at when the paper
            gives no number.
    """

    name: str
    task: str
    description: str
    changes: dict
    tiny_changes: dict
    references: tuple = ()
    default_input_size: tuple = (224, 224)


# Seconds-to-build versions: one block per stage, width 1/8, small tables and decoder. Spans and
# strides are kept, so a tiny model exercises the same code paths as the full one.
_TINY_BACKBONE = {"width_multiplier": 0.125, "block_repeats": (1, 1, 1, 1), "max_span": 16}
_TINY_PANOPTIC = {
    **_TINY_BACKBONE,
    # Span 65 needs tables of at least 33 rows a side.
    "max_span": 33,
    "projection_channels": 16,
    "semantic_decoder_channels": 16,
    "semantic_low_level_channels": (8, 4),
    "instance_decoder_channels": 8,
    "instance_low_level_channels": (4, 2),
    "semantic_head_channels": 16,
    "instance_head_channels": 4,
}

_CONV_STEM_T1 = "T1 (Conv-Stem + Axial-Attention)"

# Stand-alone ("Full") Axial-ResNets: the conv stem is replaced by three axial blocks, span 15
# everywhere (P section 4.1), at the width of T1's row (12.5M parameters: width 0.5).
_FULL_AXIAL = {
    "stem": "full_axial",
    "width_multiplier": 0.5,
    "span": 15,
    # The paper does not give the stem blocks' width. Stem blocks of base width 24 (96 output
    # channels) bring Full Axial-ResNet-50 closest to T1's 3.3B M-Adds (3.51B, +6%); the
    # width-scaled 16 (64 channels) gives 2.90B (-12%). Parameters hardly depend on it.
    "stem_width_multiplier": 0.75,
}


def _classifier(name, description, changes, references=()):
    return ModelVariant(name, "classifier", description, changes, dict(_TINY_BACKBONE), references)


def _deeplab(name, description, changes, references):
    changes = {
        # Axial-DeepLab: Inception stem, span-65 local attention (T7, confirmed by the first
        # author), output stride 16 by removing the last stride (no atrous attention).
        "stem": "inception",
        "span": 65,
        "output_stride": 16,
        **changes,
    }
    return ModelVariant(
        name,
        "panoptic",
        description,
        changes,
        dict(_TINY_PANOPTIC),
        references,
        default_input_size=(1025, 1025),
    )


def _coco(params, madds):
    return PaperReference("T2 (COCO)", (1025, 1025), 133, params, madds)


def _cityscapes(params, madds, table="T6 (Cityscapes)", **overrides):
    return PaperReference(table, (1025, 2049), 19, params, madds, tuple(overrides.items()))


VARIANTS = {
    variant.name: variant
    for variant in (
        _classifier(
            "axial_resnet_s",
            "Conv-stem Axial-ResNet-S (width 0.5), ImageNet classifier",
            {"width_multiplier": 0.5},
            (PaperReference(_CONV_STEM_T1, (224, 224), 1000, 12.4e6, 2.8e9),),
        ),
        _classifier(
            "axial_resnet_m",
            "Conv-stem Axial-ResNet-M (width 0.75), ImageNet classifier",
            {"width_multiplier": 0.75},
        ),
        _classifier(
            "axial_resnet_l", "Conv-stem Axial-ResNet-L (width 1.0), ImageNet classifier", {}
        ),
        _classifier(
            "axial_resnet_xl",
            "Conv-stem Axial-ResNet-XL (width 2.0), ImageNet classifier",
            {"width_multiplier": 2.0},
        ),
        _classifier(
            "full_axial_resnet_26",
            "Full (stand-alone) Axial-ResNet-26, width 0.5, span 15",
            {**_FULL_AXIAL, "block_repeats": (1, 2, 4, 1)},
        ),
        _classifier(
            "full_axial_resnet_50",
            "Full (stand-alone) Axial-ResNet-50, width 0.5, span 15",
            _FULL_AXIAL,
            (PaperReference("T1 (Full Axial-Attention)", (224, 224), 1000, 12.5e6, 3.3e9),),
        ),
        _deeplab(
            "axial_deeplab_s",
            "Axial-DeepLab-S: Axial-ResNet-S backbone, span 65, output stride 16",
            {"width_multiplier": 0.5},
            (_coco(12.1e6, 110.4e9), _cityscapes(12.1e6, 220.8e9)),
        ),
        _deeplab(
            "axial_deeplab_m",
            "Axial-DeepLab-M: Axial-ResNet-M backbone, span 65, output stride 16",
            {"width_multiplier": 0.75},
            (_coco(25.9e6, 209.9e9), _cityscapes(25.9e6, 419.6e9)),
        ),
        _deeplab(
            "axial_deeplab_l",
            "Axial-DeepLab-L: Axial-ResNet-L backbone, span 65, output stride 16",
            {},
            (_coco(44.9e6, 343.9e9), _cityscapes(44.9e6, 687.4e9))
            + tuple(
                _cityscapes(44.9e6, madds, table=f"T7 (span {span})", span=span)
                for span, madds in ((5, 617.4e9), (9, 622.1e9), (17, 631.5e9), (33, 650.2e9),
                                    (65, 687.4e9))
            ),
        ),
        _deeplab(
            "axial_deeplab_xl",
            "Axial-DeepLab-XL: Axial-ResNet-XL backbone, span 65, output stride 16",
            {"width_multiplier": 2.0},
            (_cityscapes(173.0e6, 2446.8e9),),
        ),
    )
}

TASK_DEFAULTS = {"classifier": CLASSIFIER_DEFAULTS, "panoptic": PANOPTIC_DEFAULTS}

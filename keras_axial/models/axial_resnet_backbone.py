"""The Axial-ResNet backbone: a stem and four stages of axial-attention bottleneck blocks."""

import math

import keras

from keras_axial.layers import AxialBlock, ConvStem, FullAxialStem, InceptionStem
from keras_axial.models import _checks
from keras_axial.utils.model_statistics import functional_madds

STEMS = ("conv", "inception", "full_axial")
OUTPUT_STRIDES = (16, 32)
# Base channels of each stem at width 1.0: the ResNet 7x7 conv, the Inception stem's three
# convolutions, and the full-axial stem's block width (4x that many output channels, as the
# Inception stem's 128).
_STEM_BASE_CHANNELS = {"conv": 64, "inception": (64, 64, 128), "full_axial": 32}


@keras.saving.register_keras_serializable(package="keras_axial")
class AxialResNetBackbone(keras.Model):
    """Axial-ResNet: a stem, then four stages of `AxialBlock`s (ResNet-50 layout by default).

    Images in [0, 255] are normalized inside (`x / 127.5 - 1`). Stage `k` (res2..res5) has
    base width `f = 64 * 2**(k - 2) * width_multiplier` (blocks output `4f` channels); its first
    block strides by 2 (except res2, which follows the stride-4 stem, and res5 at output stride
    16, whose stride is removed without atrous attention, P Sec. 3). The model returns the
    ReLU-activated output of every stage, a feature pyramid at strides 4, 8, 16 and 32 (16 for
    res5 at output stride 16).

    Stochastic depth grows linearly with the stage (deeplab2's 'linear' schedule): a block of
    stage res`k` drops its residual branch with rate `drop_path_rate * (k - 1) / 4`, i.e. 1/4 of
    `drop_path_rate` in res2 up to all of it in res5.

    Sublayer names: `normalization`, `stem`, `stage{k}_block{i}` (k = 2..5, i from 1) and
    `res{k}` (the activated stage outputs).

    Args:
        block_repeats: four ints, blocks per stage. Defaults to `(3, 4, 6, 3)` (ResNet-50).
        width_multiplier: float, scales every channel (0.5 / 0.75 / 1.0 / 2.0 for S / M / L /
            XL). Defaults to `1.0`.
        stem: `"conv"` (7x7/2 conv + 3x3/2 max-pool, ImageNet), `"inception"` (three 3x3 convs,
            64-64-128, + max-pool; Axial-DeepLab) or `"full_axial"` (three axial blocks, the
            first strided, + max-pool; stand-alone Axial-ResNets). Defaults to `"conv"`.
        stem_width_multiplier: None or float, scales the stem's channels; None uses
            `width_multiplier`. Defaults to `None`.
        span: None (global attention) or odd int, the axial span of every block. Defaults to
            `None`.
        max_span: None or int, relative tables have `2 * max_span - 1` rows (see
            `keras_axial.layers.AxialAttention`). Defaults to `200`.
        num_heads: int, attention heads. Defaults to `8`.
        output_stride: 32, or 16 (the last stage keeps stride 16). Defaults to `32`.
        stride_mode: `"pool"` (paper) or `"slice"` (deeplab2) striding inside the attention.
            Defaults to `"pool"`.
        drop_path_rate: float in [0, 1), stochastic depth of the last stage. Defaults to `0.0`.
        batch_norm_momentum: float. Defaults to `0.99`.
        batch_norm_epsilon: float. Defaults to `1e-3`.
        sync_batch_norm: bool, synchronized batch norm across replicas. Defaults to `False`.
        query_block_size: None or int, speed knob of local attention (no effect on results).
            Defaults to `None`.
        image_shape: `(height, width, 3)` of the input; None dimensions accept any size.
            Defaults to `(None, None, 3)`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        images: float `[batch, height, width, 3]` pixels in [0, 255].
        training: bool.

    Returns:
        A dict `{"res2", "res3", "res4", "res5"}` of `[batch, ceil(height / s),
        ceil(width / s), channels]` feature maps, `s` = 4, 8, 16, 32 (or 16).

    Example:

    >>> backbone = AxialResNetBackbone(width_multiplier=0.5, span=65, stem="inception",
    ...                                output_stride=16)
    >>> features = backbone(np.zeros((1, 129, 129, 3), "float32"))
    >>> tuple(features["res5"].shape)
    (1, 9, 9, 1024)

    Reference:
        Wang et al., "Axial-DeepLab: Stand-Alone Axial-Attention for Panoptic Segmentation",
        ECCV 2020, Sec. 3.2 and 4.1 (https://arxiv.org/abs/2003.07853).
    """

    def __init__(
        self,
        block_repeats=(3, 4, 6, 3),
        width_multiplier=1.0,
        stem="conv",
        stem_width_multiplier=None,
        span=None,
        max_span=200,
        num_heads=8,
        output_stride=32,
        stride_mode="pool",
        drop_path_rate=0.0,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        sync_batch_norm=False,
        query_block_size=None,
        image_shape=(None, None, 3),
        **kwargs,
    ):
        block_repeats = _checks.positive_ints("block_repeats", block_repeats, length=4)
        width_multiplier = _checks.positive_float("width_multiplier", width_multiplier)
        stem = _checks.choice("stem", stem, STEMS)
        stem_width_multiplier = _checks.positive_float(
            "stem_width_multiplier", stem_width_multiplier, allow_none=True
        )
        output_stride = _checks.choice("output_stride", output_stride, OUTPUT_STRIDES)
        drop_path_rate = _checks.rate("drop_path_rate", drop_path_rate)
        _checks.batch_norm_settings(batch_norm_momentum, batch_norm_epsilon, sync_batch_norm)
        image_shape = _image_shape(image_shape)
        batch_norm = {
            "batch_norm_momentum": batch_norm_momentum,
            "batch_norm_epsilon": batch_norm_epsilon,
            "sync_batch_norm": sync_batch_norm,
        }
        attention = {
            "span": span,
            "max_span": max_span,
            "num_heads": num_heads,
            "stride_mode": stride_mode,
            "query_block_size": query_block_size,
        }

        images = keras.Input(shape=image_shape, name="images")
        # Pixels [0, 255] -> [-1, 1]; padding with the mean pixel 127.5 is padding with 0.
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalization")(images)
        stem_scale = width_multiplier if stem_width_multiplier is None else stem_width_multiplier
        x = _make_stem(stem, stem_scale, batch_norm, attention)(x)

        pyramid = {}
        stride = 4
        for stage_index, repeats in enumerate(block_repeats):
            stage = stage_index + 2
            filters = _channels(f"res{stage} base width", 64 * 2**stage_index * width_multiplier)
            stage_stride = 2 if stage > 2 and stride < output_stride else 1
            stride *= stage_stride
            for block_index in range(repeats):
                x = AxialBlock(
                    filters,
                    strides=stage_stride if block_index == 0 else 1,
                    drop_path_rate=drop_path_rate * (stage - 1) / 4,
                    name=f"stage{stage}_block{block_index + 1}",
                    **attention,
                    **batch_norm,
                )(x)
            # Blocks return pre-activation sums (the next block applies its own ReLU).
            pyramid[f"res{stage}"] = keras.layers.ReLU(name=f"res{stage}")(x)

        pyramid_channels = {key: tensor.shape[-1] for key, tensor in pyramid.items()}
        super().__init__(inputs=images, outputs=pyramid, **kwargs)

        self.block_repeats = block_repeats
        self.width_multiplier = width_multiplier
        self.stem = stem
        self.stem_width_multiplier = stem_width_multiplier
        self.span = span
        self.max_span = max_span
        self.num_heads = num_heads
        self.output_stride = output_stride
        self.stride_mode = stride_mode
        self.drop_path_rate = drop_path_rate
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_epsilon = batch_norm_epsilon
        self.sync_batch_norm = sync_batch_norm
        self.query_block_size = query_block_size
        self.image_shape = image_shape
        self.pyramid_strides = {
            "res2": 4, "res3": 8, "res4": 16, "res5": min(32, output_stride)
        }
        self.pyramid_channels = pyramid_channels

    def compute_madds(self, input_shape):
        """Stem, blocks and shortcuts (see `keras_axial.utils.count_madds` for the rules)."""
        return functional_madds(self, input_shape)

    def get_config(self):
        return _checks.model_config(
            self,
            block_repeats=list(self.block_repeats),
            width_multiplier=self.width_multiplier,
            stem=self.stem,
            stem_width_multiplier=self.stem_width_multiplier,
            span=self.span,
            max_span=self.max_span,
            num_heads=self.num_heads,
            output_stride=self.output_stride,
            stride_mode=self.stride_mode,
            drop_path_rate=self.drop_path_rate,
            query_block_size=self.query_block_size,
            image_shape=list(self.image_shape),
            **_checks.batch_norm_config(self),
        )

    @classmethod
    def from_config(cls, config):
        return _checks.from_model_config(cls, config)


def _channels(what, value):
    rounded = round(value)
    if rounded < 1 or not math.isclose(value, rounded, abs_tol=1e-6):
        raise ValueError(
            f"The width multipliers must give whole channel counts: {what} would be {value}. "
            "Choose `width_multiplier` / `stem_width_multiplier` so that 64 times it is an "
            "integer (e.g. 0.125, 0.25, 0.5, 0.75, 1.0, 2.0)."
        )
    return int(rounded)


def _make_stem(stem, scale, batch_norm, attention):
    base = _STEM_BASE_CHANNELS[stem]
    if stem == "conv":
        return ConvStem(_channels("the stem width", base * scale), name="stem", **batch_norm)
    if stem == "inception":
        filters = tuple(_channels("the stem width", channels * scale) for channels in base)
        return InceptionStem(filters, name="stem", **batch_norm)
    return FullAxialStem(
        filters=_channels("the stem block width", base * scale),
        name="stem",
        **attention,
        **batch_norm,
    )


def _image_shape(image_shape):
    if (
        isinstance(image_shape, (str, bytes))
        or not hasattr(image_shape, "__len__")
        or len(image_shape) != 3
        or image_shape[-1] != 3
        or any(d is not None and (not isinstance(d, int) or d < 1) for d in image_shape[:2])
    ):
        raise ValueError(
            "`image_shape` must be (height, width, 3) with positive ints or None. "
            f"Received: image_shape={image_shape!r}"
        )
    return tuple(image_shape)

"""Reusable Keras layers of keras-axial (backend-neutral: `keras.ops` only)."""

from keras_axial.layers.axial_attention import AxialAttention
from keras_axial.layers.axial_attention import single_pass_attention
from keras_axial.layers.axial_attention_2d import AxialAttention2D
from keras_axial.layers.axial_block import AxialBlock
from keras_axial.layers.bottleneck_block import BottleneckBlock
from keras_axial.layers.conv_stem import ConvStem
from keras_axial.layers.drop_path import DropPath
from keras_axial.layers.full_axial_stem import FullAxialStem
from keras_axial.layers.inception_stem import InceptionStem
from keras_axial.layers.resize import resize_bilinear_aligned

__all__ = [
    "AxialAttention",
    "AxialAttention2D",
    "AxialBlock",
    "BottleneckBlock",
    "ConvStem",
    "DropPath",
    "FullAxialStem",
    "InceptionStem",
    "resize_bilinear_aligned",
    "single_pass_attention",
]

"""Weight import from other implementations (deeplab2)."""

from keras_axial.convert.deeplab2 import layer_from_deeplab2

__all__ = ["layer_from_deeplab2"]

"""Small shared helpers: atomic file writing, parameter and M-Adds counting.

The counting helpers import Keras; they load on first use so that the file helpers stay cheap
for the data converters and the evaluation tools.
"""

import importlib

from keras_axial.utils.io import atomic_directory, atomic_write

_STATISTICS = ("count_madds", "count_params", "functional_madds", "madds_breakdown")

__all__ = ["atomic_directory", "atomic_write", *_STATISTICS]


def __getattr__(name):
    if name in _STATISTICS:
        return getattr(importlib.import_module("keras_axial.utils.model_statistics"), name)
    raise AttributeError(f"module 'keras_axial.utils' has no attribute {name!r}")

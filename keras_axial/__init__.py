"""keras-axial: Axial-DeepLab and Axial-ResNets for Keras 3.

Subpackages load lazily so that `import keras_axial` is cheap and the backend-neutral parts
(`layers`, `models`, `losses`, `postprocessing`) never pull in TensorFlow-only code.
"""

import importlib

__version__ = "0.1.0"

_SUBPACKAGES = (
    "convert",
    "data",
    "evaluation",
    "layers",
    "losses",
    "models",
    "postprocessing",
    "training",
    "utils",
    "visualization",
)


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"keras_axial.{name}")
    raise AttributeError(f"module 'keras_axial' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBPACKAGES))

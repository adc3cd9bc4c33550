"""Small shared helpers: atomic file writing, parameter and M-Adds counting."""

from keras_axial.utils.io import atomic_directory, atomic_write
from keras_axial.utils.model_statistics import (
    count_madds,
    count_params,
    functional_madds,
    madds_breakdown,
)

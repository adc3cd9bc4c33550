"""Small shared helpers: atomic file writing, parameter and M-Adds counting."""

from keras_axial.utils.io import atomic_directory, atomic_write

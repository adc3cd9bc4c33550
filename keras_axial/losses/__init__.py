"""Panoptic-DeepLab losses: bootstrapped cross-entropy, center MSE, offset L1, and their sum."""

from keras_axial.losses.panoptic_loss import PanopticLoss
from keras_axial.losses.weighted_bootstrapped_cross_entropy import (
    WeightedBootstrappedCrossEntropy,
)
from keras_axial.losses.weighted_l1 import WeightedL1
from keras_axial.losses.weighted_mean_squared_error import WeightedMeanSquaredError

__all__ = [
    "PanopticLoss",
    "WeightedBootstrappedCrossEntropy",
    "WeightedL1",
    "WeightedMeanSquaredError",
]

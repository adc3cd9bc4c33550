"""The errors a user's command can cause, reported by the CLIs as one line without traceback."""

from keras_axial.training.callbacks import NonFiniteLossError
from keras_axial.training.checkpoints import NonFiniteWeightsError
from keras_axial.training.experiment import ExperimentMismatchError
from keras_axial.training.gin_config import GinConfigError

USER_ERRORS = (
    GinConfigError,
    ExperimentMismatchError,
    FileNotFoundError,
    NonFiniteLossError,
    NonFiniteWeightsError,
)

"""The one place where keras-axial meets gin.

Library classes never import gin (a `@gin.configurable` Keras Layer or Model breaks Keras
serialization); instead the public builders are registered here with `gin.external_configurable`,
so every gin file in `gin/` can name them. Import this module (the training and export entry points
do) before parsing gin files.

Each part of the package owns one section below.
"""

import gin

# --- models -------------------------------------------------------------------------------------

# --- data ---------------------------------------------------------------------------------------

# --- losses and post-processing -----------------------------------------------------------------

# --- training -----------------------------------------------------------------------------------

from keras_axial.training import experiment as _training_experiment  # noqa: E402
from keras_axial.training import optimizers as _training_optimizers  # noqa: E402
from keras_axial.training import schedules as _training_schedules  # noqa: E402
from keras_axial.training import strategies as _training_strategies  # noqa: E402

# Experiments bind `train_and_evaluate` (the run) and reference the builders it calls:
# `strategy_fn = @get_strategy`, `optimizer_fn = @build_optimizer`,
# `learning_rate_fn = @build_learning_rate_schedule`.
gin.external_configurable(_training_strategies.get_strategy, module="keras_axial.training")
gin.external_configurable(_training_optimizers.build_optimizer, module="keras_axial.training")
gin.external_configurable(
    _training_schedules.build_learning_rate_schedule, module="keras_axial.training"
)
gin.external_configurable(
    _training_experiment.train_and_evaluate,
    module="keras_axial.training",
    denylist=["model_dir", "operative_config_fn", "mode", "checkpoint", "output"],
)

# --- export -------------------------------------------------------------------------------------

"""Training: strategies, optimizers, schedules, checkpoints, callbacks, the multi-worker loop.

TensorFlow-specific (tf.distribute). Public API:

- `get_strategy`, `resolve_batch_sizes`, `is_chief`, `is_multi_worker` (`strategies`).
- `RAdam`, `Lookahead`, `build_optimizer` (`optimizers`).
- `LinearWarmup`, `build_learning_rate_schedule` (`schedules`).
- `CheckpointManager`, `NonFiniteWeightsError` (`checkpoints`).
- `NonFiniteLossError`, `TrainingProgress`, `PeriodicCheckpoint`, `PeriodicEvaluation`,
  `NonFiniteLossGuard`, `TensorBoardSummaries`, `StepBoundaries` (`callbacks`).
- `fit_custom_loop`, `make_train_function` (`custom_loop`): training under
  `MultiWorkerMirroredStrategy`, where Keras 3's `model.fit` fails.
- `evaluate_panoptic`, `evaluate_classification` (`evaluation`).
- `train_and_evaluate` (also `mode="evaluate"`), `check_model_dir`, `ExperimentMismatchError`
  (`experiment`).
"""

import importlib

_LAZY = {
    "get_strategy": "strategies",
    "resolve_batch_sizes": "strategies",
    "is_chief": "strategies",
    "is_multi_worker": "strategies",
    "RAdam": "optimizers",
    "Lookahead": "optimizers",
    "build_optimizer": "optimizers",
    "LinearWarmup": "schedules",
    "build_learning_rate_schedule": "schedules",
    "CheckpointManager": "checkpoints",
    "NonFiniteWeightsError": "checkpoints",
    "NonFiniteLossError": "callbacks",
    "TrainingProgress": "callbacks",
    "PeriodicCheckpoint": "callbacks",
    "PeriodicEvaluation": "callbacks",
    "NonFiniteLossGuard": "callbacks",
    "TensorBoardSummaries": "callbacks",
    "StepBoundaries": "callbacks",
    "fit_custom_loop": "custom_loop",
    "make_train_function": "custom_loop",
    "evaluate_panoptic": "evaluation",
    "evaluate_classification": "evaluation",
    "train_and_evaluate": "experiment",
    "check_model_dir": "experiment",
    "ExperimentMismatchError": "experiment",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"keras_axial.training.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'keras_axial.training' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

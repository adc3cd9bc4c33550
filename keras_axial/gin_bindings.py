"""The one place where keras-axial meets gin.

Library classes never import gin (a `@gin.configurable` Keras Layer or Model breaks Keras
serialization); instead the public builders are registered here with `gin.external_configurable`,
so every gin file in `gin/` can name them. Import this module (the training and export entry points
do) before parsing gin files.

Each part of the package owns one section below.
"""

import gin

# --- models -------------------------------------------------------------------------------------

from keras_axial import models as _models  # noqa: E402

# Model files in gin/models bind `get_model` (the registry: `get_model.name` picks a row of the
# variant table, other parameters are overrides); experiments pass `model_fn = @get_model`.
# The family builders take a full flat configuration, for experiments that bypass the table.
get_model = gin.external_configurable(_models.get_model, module="keras_axial.models")
build_axial_resnet_classifier = gin.external_configurable(
    _models.build_axial_resnet_classifier, module="keras_axial.models"
)
build_axial_deeplab = gin.external_configurable(
    _models.build_axial_deeplab, module="keras_axial.models"
)

# --- data ---------------------------------------------------------------------------------------

from keras_axial.data import classification as _data_classification  # noqa: E402
from keras_axial.data import panoptic_pipeline as _data_panoptic  # noqa: E402

# Dataset functions for `train_and_evaluate(train_dataset_fn=..., eval_dataset_fn=...)`, scoped
# `train/` and `eval/` in gin/data/*.gin: `@train/panoptic_input_fn`, `@eval/panoptic_input_fn`,
# `@train/classification_input_fn`, ... The loop passes `input_context`, `batch_size` (per replica)
# and `seed`, so they are not bindable.
gin.external_configurable(
    _data_panoptic.panoptic_input_fn,
    module="keras_axial.data",
    denylist=["input_context", "batch_size", "seed"],
)
gin.external_configurable(
    _data_classification.classification_input_fn,
    module="keras_axial.data",
    denylist=["input_context", "batch_size", "seed"],
)

# --- losses and post-processing -----------------------------------------------------------------

from keras_axial import losses as _losses  # noqa: E402
from keras_axial import postprocessing as _postprocessing  # noqa: E402


def _panoptic_loss(
    semantic_weight=1.0,
    center_weight=200.0,
    offset_weight=0.01,
    top_k_percent=0.2,
    ignore_label=255,
):
    """`keras_axial.losses.PanopticLoss` (same arguments and defaults: the paper's weights)."""
    return _losses.PanopticLoss(
        semantic_weight=semantic_weight,
        center_weight=center_weight,
        offset_weight=offset_weight,
        top_k_percent=top_k_percent,
        ignore_label=ignore_label,
    )


def _postprocessing_config(
    thing_class_ids,
    label_divisor,
    void_label,
    center_threshold=0.1,
    nms_kernel=7,
    keep_k_centers=200,
    stuff_area_limit=4096,
):
    """`keras_axial.postprocessing.PostProcessingConfig` (same arguments and defaults)."""
    return _postprocessing.PostProcessingConfig(
        thing_class_ids=thing_class_ids,
        label_divisor=label_divisor,
        void_label=void_label,
        center_threshold=center_threshold,
        nms_kernel=nms_kernel,
        keep_k_centers=keep_k_centers,
        stuff_area_limit=stuff_area_limit,
    )


# `loss = @panoptic_loss()` with e.g. `panoptic_loss.center_weight = 100.0`; and
# `@postprocessing_config()` for the `panoptic_deeplab_postprocess` settings
# (`config.as_kwargs()`), e.g. Cityscapes: `postprocessing_config.nms_kernel = 13`,
# `postprocessing_config.stuff_area_limit = 2048`.
panoptic_loss = gin.external_configurable(
    _panoptic_loss, name="panoptic_loss", module="keras_axial.losses"
)
postprocessing_config = gin.external_configurable(
    _postprocessing_config, name="postprocessing_config", module="keras_axial.postprocessing"
)


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


def _export_settings(
    model_fn=None,
    task="panoptic",
    dataset_spec=None,
    postprocess_options=None,
    mixed_precision=None,
):
    """What `python -m export.saved_model --gin_file=...` reads from a gin configuration.

    Every parameter left unbound takes the experiment's `train_and_evaluate` binding of the
    same name, so a training experiment exports as it is; an export-only gin file or
    `--gin_bindings` can change one, e.g.
    `export_settings.postprocess_options = {'center_threshold': 0.2, 'nms_kernel': 13}`.

    Args:
        model_fn: builds the model (`@get_model`). Defaults to `None`.
        task: `"panoptic"` or `"classification"`. Defaults to `"panoptic"`.
        dataset_spec: `DatasetSpec` name or JSON path (thing ids, label divisor, void label
            of the baked post-processing). Defaults to `None`.
        postprocess_options: `center_threshold`, `nms_kernel`, `keep_k_centers`,
            `stuff_area_limit` of the baked post-processing. Defaults to `None` (the
            post-processing's defaults).
        mixed_precision: the training policy, recorded in the export's metadata (exports
            compute in float32). Defaults to `None`.

    Returns:
        A dict of these values.
    """
    return {
        "model_fn": model_fn,
        "task": task,
        "dataset_spec": dataset_spec,
        "postprocess_options": postprocess_options,
        "mixed_precision": mixed_precision,
    }


# The export reads it through gin (the wrapped function), never by calling the plain one.
export_settings = gin.external_configurable(
    _export_settings, name="export_settings", module="keras_axial.export"
)

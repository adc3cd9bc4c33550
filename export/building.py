"""Building the model an export starts from: the registry, a gin experiment, a checkpoint.

Also rebuilds the Keras model of an existing export (from its metadata and the SavedModel's
variables), which `export.tflite` and `export.verify` need.
"""

import inspect
import pathlib

POSTPROCESSING_DEFAULT_KEYS = ("center_threshold", "nms_kernel", "keep_k_centers",
                               "stuff_area_limit")
# Default dataset for a registered panoptic model built without a gin experiment: the
# registry's default head has Cityscapes' 19 classes.
DEFAULT_PANOPTIC_DATASET = "cityscapes"
# Training bindings an export reads from a gin experiment when `export_settings` (the export
# section of keras_axial/gin_bindings.py) does not bind them itself.
_EXPERIMENT_PARAMETERS = ("model_fn", "task", "dataset_spec", "postprocess_options",
                          "mixed_precision")


def model_task(model):
    """`"panoptic"` for models returning the Axial-DeepLab dict, `"classifier"` for logits."""
    import keras

    try:
        spec = model.output  # functional models: the symbolic output structure
    except (AttributeError, ValueError):
        spec = model.compute_output_spec(keras.KerasTensor((1, 33, 33, 3), dtype="float32"))
    if isinstance(spec, dict):
        missing = {"semantic_logits", "center_heatmap", "offsets"} - set(spec)
        if missing:
            raise ValueError(
                f"Model {model.name!r} returns a dict without {sorted(missing)}. Expected the "
                "Axial-DeepLab outputs {'semantic_logits', 'center_heatmap', 'offsets'} or "
                "classifier logits [batch, num_classes]."
            )
        return "panoptic"
    if isinstance(spec, (list, tuple)) or len(spec.shape) != 2:
        raise ValueError(
            f"Model {model.name!r} returns {spec!r}. Expected the Axial-DeepLab output dict "
            "or classifier logits [batch, num_classes]."
        )
    return "classifier"


def build_registry_model(name, *, tiny=False, overrides=None, seed=0):
    """`keras_axial.models.get_model(name, ...)` with seeded random weights.

    Args:
        name: a registered model name.
        tiny: apply `tiny_overrides(name)` first. Defaults to `False`.
        overrides: further `get_model` overrides. Defaults to `None`.
        seed: seed of the random initial weights. Defaults to `0`.

    Returns:
        `(model, overrides)`, the overrides actually applied.
    """
    import keras

    from keras_axial import models

    applied = dict(models.tiny_overrides(name)) if tiny else {}
    applied.update(overrides or {})
    keras.utils.set_random_seed(seed)
    return models.get_model(name, **applied), applied


def _gin_settings_function():
    import gin

    import keras_axial.gin_bindings as bindings

    return bindings.export_settings, gin


def load_gin_experiment(gin_files, gin_bindings=()):
    """Parses an experiment and returns what an export needs from it.

    The export reads `export_settings.*` (keras_axial/gin_bindings.py); any of its parameters
    left unbound is taken from the experiment's `train_and_evaluate.*` binding of the same
    name, so a training experiment exports as it is, and an export-only gin file (or
    `--gin_bindings`) can change, say, `export_settings.postprocess_options`.

    Returns:
        A dict with `model_fn` (a callable building the model), `task`, `dataset_spec`,
        `postprocess_options`, `mixed_precision` and `gin_config` (the resolved text).
    """
    from keras_axial.training.gin_config import parse_gin

    gin_config = parse_gin(gin_files, gin_bindings)
    export_settings, gin = _gin_settings_function()
    with gin.unlock_config():
        for parameter in _EXPERIMENT_PARAMETERS:
            if _is_bound(gin, f"export_settings.{parameter}"):
                continue
            if _is_bound(gin, f"train_and_evaluate.{parameter}"):
                value = gin.query_parameter(f"train_and_evaluate.{parameter}")
                gin.bind_parameter(f"export_settings.{parameter}", value)
    settings = export_settings()
    if settings["model_fn"] is None:
        raise ValueError(
            f"The gin files {list(map(str, gin_files))} bind no model: expected "
            "`train_and_evaluate.model_fn = @get_model` (every gin/experiments file does) or "
            "`export_settings.model_fn`."
        )
    settings["gin_config"] = gin_config
    return settings


def _is_bound(gin, key):
    try:
        gin.query_parameter(key)
    except ValueError:
        return False
    return True


def resolve_checkpoint(checkpoint):
    """The weights file named by `checkpoint`.

    Args:
        checkpoint: a `.weights.h5` or `.keras` file, a training run folder (its latest trusted
            checkpoint, `checkpoints/checkpoint.json`) or a `checkpoints/` folder.

    Returns:
        A `pathlib.Path` of a `.weights.h5` or `.keras` file.
    """
    from keras_axial.training.checkpoints import latest_checkpoint

    path = pathlib.Path(checkpoint)
    if path.is_dir():
        for folder in (path / "checkpoints", path):
            entry = latest_checkpoint(folder)
            if entry is not None:
                return pathlib.Path(entry["path"])
        raise FileNotFoundError(
            f"--checkpoint={str(path)!r} is a folder without a keras_axial checkpoint index "
            "(checkpoints/checkpoint.json). Expected a training run folder, its checkpoints/ "
            "folder, or a .weights.h5 / .keras file."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"--checkpoint={str(path)!r} does not exist. Expected a .weights.h5 or .keras file "
            "or a training run folder."
        )
    if not (path.name.endswith(".weights.h5") or path.suffix == ".keras"):
        raise ValueError(
            f"--checkpoint={str(path)!r} is neither a '.weights.h5' nor a '.keras' file."
        )
    return path


def restore_weights(model, checkpoint):
    """Loads the model weights of `checkpoint` (see `resolve_checkpoint`) into `model`.

    Training checkpoints also hold optimizer variables; only the model's are read.

    Returns:
        The resolved checkpoint path.
    """
    path = resolve_checkpoint(checkpoint)
    try:
        model.load_weights(str(path))
    except ValueError as error:
        raise ValueError(
            f"Cannot load {str(path)!r} into model {model.name!r} ({model.count_params()} "
            f"parameters): {error}. Was the checkpoint written by a model of the same "
            "configuration (gin files, overrides)?"
        ) from error
    return path


def resolve_postprocessing(model, dataset_spec, options=None):
    """Every `panoptic_deeplab_postprocess` argument, validated, for an export.

    Thing ids, label divisor and void label come from the dataset spec; `center_threshold`,
    `nms_kernel`, `keep_k_centers` and `stuff_area_limit` from `options`, else from the
    post-processing's own defaults.
    """
    from keras_axial.postprocessing import panoptic_deeplab as postprocessing

    options = dict(options or {})
    unknown = sorted(set(options) - set(POSTPROCESSING_DEFAULT_KEYS))
    if unknown:
        raise ValueError(
            f"Unknown post-processing option(s) {unknown}. Expected some of "
            f"{list(POSTPROCESSING_DEFAULT_KEYS)} (thing ids, label divisor and void label "
            "come from the dataset spec)."
        )
    if model.num_classes != dataset_spec.num_classes:
        raise ValueError(
            f"Model {model.name!r} predicts {model.num_classes} classes but dataset spec "
            f"{dataset_spec.name!r} has {dataset_spec.num_classes}. Export the model with the "
            "dataset it was trained on (--dataset or the experiment's dataset_spec)."
        )
    defaults = inspect.signature(postprocessing.panoptic_deeplab_postprocess).parameters
    settings = {key: options.get(key, defaults[key].default)
                for key in POSTPROCESSING_DEFAULT_KEYS}
    settings = postprocessing.validate_postprocessing_arguments(
        num_classes=model.num_classes,
        thing_class_ids=dataset_spec.thing_class_ids,
        label_divisor=dataset_spec.label_divisor,
        void_label=dataset_spec.ignore_label,
        **settings,
    )
    settings["thing_class_ids"] = list(settings["thing_class_ids"])
    return settings


def rebuild_model(metadata, weights):
    """A fresh Keras model of an export: `metadata["model"]["keras_config"]` + `weights`.

    Args:
        metadata: the export's metadata (`export.metadata.read_metadata`).
        weights: arrays in `model.weights` order (e.g. the SavedModel's `model_weights`).
    """
    import keras

    import keras_axial.models  # noqa: F401  (registers the serializable classes)

    config = metadata["model"]["keras_config"]
    model = keras.saving.deserialize_keras_object(config)
    if len(model.weights) != len(weights):
        raise ValueError(
            f"The export holds {len(weights)} weights but its model configuration builds "
            f"{len(model.weights)}. The export was written by an incompatible keras_axial "
            f"version ({metadata['versions'].get('keras_axial')})."
        )
    model.set_weights([keras.ops.convert_to_numpy(w) for w in weights])
    return model

"""`keras_axial_export.json`: what an export holds, written beside its graphs.

The file sits in the SavedModel's `assets/` folder (it is a tracked `tf.saved_model.Asset`, so
it travels with the SavedModel and `loaded.metadata_file.asset_path` finds it), next to every
`.tflite` file as `<name>.tflite.json`, and inside the `.tflite` flatbuffer as the metadata
entry `keras_axial_export`. Reading it needs only the standard library: it is plain JSON.

Contents (format version 1):

- `format`, `format_version`, `created` (UTC, ISO 8601).
- `task`: `"panoptic"` or `"classifier"`.
- `model`: `name`, `class`, `num_parameters`, `keras_config` (the Keras serialization: the
  model can be rebuilt with `keras.saving.deserialize_keras_object` after importing
  `keras_axial.models`), and the `registry_name` / `overrides` it was built from when known.
- `source`: `gin_files`, `gin_bindings`, `gin_config` (the resolved configuration), the
  `checkpoint` the weights came from (`null` with `random_weights: true`), `seed`, the
  `training_mixed_precision` policy (exports compute in float32).
- `dataset`: the `DatasetSpec` (class names, thing ids, label divisor, ignore label); panoptic.
- `postprocessing`: every `panoptic_deeplab_postprocess` argument baked into the graph.
- `input`: per signature, the input name, dtype, shape, value range and the padding rule.
- `outputs`: per signature and output, dtype, shape and meaning.
- `versions`: keras_axial, TensorFlow, Keras, NumPy, Python.
"""

import datetime
import json
import pathlib
import platform

FILE_NAME = "keras_axial_export.json"
FORMAT = "keras_axial_export"
FORMAT_VERSION = 1

_PANOPTIC_OUTPUTS = {
    "serving_default": {
        "panoptic": ("int32", "[batch, height, width]",
                     "class * label_divisor + instance; void pixels are "
                     "void_label * label_divisor"),
        "semantic": ("int32", "[batch, height, width]", "argmax semantic class"),
        "instance": ("int32", "[batch, height, width]",
                     "1-based slot of the center a thing pixel joined, 0 for stuff and void"),
        "instance_scores": ("float32", "[batch, keep_k_centers]",
                            "score of each slot's instance (mean class probability x center "
                            "score), sorted by center score, 0 for unused slots"),
        "instance_panoptic_ids": ("int32", "[batch, keep_k_centers]",
                                  "panoptic id of each slot's segment, -1 when unused"),
        "center_heatmap": ("float32", "[batch, height, width, 1]", "raw center heatmap"),
    },
    "network": {
        "semantic_logits": ("float32", "[batch, height, width, num_classes]", "logits"),
        "center_heatmap": ("float32", "[batch, height, width, 1]", "raw center heatmap"),
        "offsets": ("float32", "[batch, height, width, 2]",
                    "(dy, dx) in pixels from each pixel to its instance center"),
    },
}

_CLASSIFIER_OUTPUTS = {
    "serving_default": {
        "probabilities": ("float32", "[batch, num_classes]", "softmax of the logits"),
    },
    "network": {"logits": ("float32", "[batch, num_classes]", "logits")},
}


def _describe(outputs):
    return {
        signature: {
            name: {"dtype": dtype, "shape": shape, "description": text}
            for name, (dtype, shape, text) in entries.items()
        }
        for signature, entries in outputs.items()
    }


def _versions():
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_axial

    return {
        "keras_axial": keras_axial.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _model_config(model):
    """The model's Keras serialization without its compile configuration.

    A trained model carries its optimizer and learning-rate schedule in `compile_config`;
    an export never compiles, and a schedule need not be serializable.
    """
    import keras

    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    return _jsonable(config)


def build_metadata(
    *,
    task,
    model,
    size_rule=None,
    dataset_spec=None,
    postprocessing=None,
    registry_name=None,
    overrides=None,
    gin_files=(),
    gin_bindings=(),
    gin_config=None,
    checkpoint=None,
    seed=None,
    mixed_precision=None,
):
    """The export description written as `keras_axial_export.json` (see the module docstring).

    Args:
        task: `"panoptic"` or `"classifier"`.
        model: the exported Keras model.
        size_rule: the `export.serving.SizeRule` images are padded to, or None. Defaults to
            `None`.
        dataset_spec: the `DatasetSpec` (panoptic). Defaults to `None`.
        postprocessing: the baked post-processing arguments (panoptic). Defaults to `None`.
        registry_name: registered model name, when built from the registry. Defaults to `None`.
        overrides: registry overrides. Defaults to `None`.
        gin_files: gin files the model came from. Defaults to `()`.
        gin_bindings: extra gin bindings. Defaults to `()`.
        gin_config: the resolved gin configuration text. Defaults to `None`.
        checkpoint: path of the restored weights; None means random weights. Defaults to
            `None`.
        seed: the seed of random weights. Defaults to `None`.
        mixed_precision: the policy the model was trained with (exports compute in
            float32). Defaults to `None`.

    Returns:
        A JSON-serialisable dict.
    """
    import keras

    if task not in ("panoptic", "classifier"):
        raise ValueError(f"`task` must be 'panoptic' or 'classifier'. Received: task={task!r}")
    padding = None
    if size_rule is not None:
        padding = {
            **size_rule.to_dict(),
            "pad_value": 127.5,
            "where": "bottom and right; predictions are cropped back to the input size",
        }
    image_input = {
        "name": "images",
        "shape": [None, None, None, 3],
        "layout": "[batch, height, width, 3], RGB; any batch, any height and width >= 1",
        "padding": padding,
    }
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "task": task,
        "model": {
            "name": model.name,
            "class": type(model).__name__,
            "registry_name": registry_name,
            "overrides": _jsonable(overrides or {}),
            "num_parameters": int(model.count_params()),
            "num_classes": int(getattr(model, "num_classes", 0)) or None,
            "keras_config": _model_config(model),
        },
        "source": {
            "gin_files": [str(path) for path in gin_files],
            "gin_bindings": list(gin_bindings),
            "gin_config": gin_config,
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "random_weights": checkpoint is None,
            "seed": seed,
            "training_mixed_precision": mixed_precision,
        },
        "dataset": None if dataset_spec is None else dataset_spec.to_dict(),
        "postprocessing": None if postprocessing is None else _jsonable(postprocessing),
        "input": {
            "serving_default": {**image_input, "dtype": "uint8", "range": [0, 255]},
            "network": {**image_input, "dtype": "float32", "range": [0.0, 255.0]},
        },
        "outputs": _describe(_PANOPTIC_OUTPUTS if task == "panoptic" else _CLASSIFIER_OUTPUTS),
        "versions": _versions(),
    }
    if task == "classifier":
        for entry in metadata["input"].values():
            entry["padding"] = None
    json.dumps(metadata)  # fails here, not half-way through a write, if something is off
    return metadata


def _jsonable(value):
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def write_metadata(metadata, path):
    """Writes `metadata` as indented JSON to `path` (atomically)."""
    from keras_axial.utils import atomic_write

    with atomic_write(path, "w") as handle:
        json.dump(metadata, handle, indent=2, sort_keys=False)
        handle.write("\n")


def read_metadata(path):
    """Reads an export's metadata.

    Args:
        path: a SavedModel folder (reads `assets/keras_axial_export.json`), a `.tflite` file
            (reads the `<file>.json` beside it) or the JSON file itself.

    Returns:
        The metadata dict.

    Raises:
        FileNotFoundError: no metadata where `path` says; the message names the file looked
            for.
        ValueError: the file is not a keras_axial export description.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        candidate = path / "assets" / FILE_NAME
    elif path.suffix == ".tflite":
        candidate = path.with_name(path.name + ".json")
    else:
        candidate = path
    if not candidate.is_file():
        raise FileNotFoundError(
            f"No export metadata at {str(candidate)!r} (looked up for {str(path)!r}). Expected "
            f"a SavedModel written by `python -m export.saved_model` (assets/{FILE_NAME}) or a "
            "`.tflite` file written by `python -m export.tflite` (<file>.tflite.json)."
        )
    try:
        metadata = json.loads(candidate.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(candidate)!r} is not valid JSON: {error}") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(
            f"{str(candidate)!r} is not a keras_axial export description (expected "
            f"\"format\": \"{FORMAT}\")."
        )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{str(candidate)!r} has format_version {metadata.get('format_version')!r}; this "
            f"version of export/ reads {FORMAT_VERSION}."
        )
    return metadata

"""Exports a keras_axial model as a SavedModel with the post-processing inside.

Usage (from the repository root):

    # A trained model: its experiment's gin file and a checkpoint (a .weights.h5 / .keras file
    # or a training run folder, whose latest checkpoint is taken).
    python -m export.saved_model --gin_file=gin/experiments/coco_axial_deeplab_s.gin \\
        --checkpoint=/runs/coco_s --output=/exports/coco_s

    # A registered model with random weights, to try the tools out.
    python -m export.saved_model --model=axial_deeplab_s --tiny --dataset=synthetic \\
        --output=/tmp/axial_deeplab_s_tiny

Signatures (see `export/serving.py`): `serving_default` (uint8 images, any batch and size ->
`panoptic`, `semantic`, `instance`, `instance_scores`, `instance_panoptic_ids`,
`center_heatmap`) and `network` (float32 images -> `semantic_logits`, `center_heatmap`,
`offsets`); classifiers: `serving_default` (uint8 -> `probabilities`) and `network` (float32 ->
`logits`). Loading needs TensorFlow only:

    loaded = tf.saved_model.load("/exports/coco_s")
    outputs = loaded.signatures["serving_default"](images=tf.constant(uint8_images))

The post-processing settings, the dataset spec, the model configuration and the input
contract are written to `assets/keras_axial_export.json` (`export/metadata.py`).
"""

import pathlib
import tempfile

from absl import app
from absl import flags

from export import _cli

_POSTPROCESSING_FLAGS = ("center_threshold", "nms_kernel", "keep_k_centers", "stuff_area_limit")


def export_saved_model(
    model,
    output,
    *,
    dataset_spec=None,
    postprocess_options=None,
    overwrite=False,
    **provenance,
):
    """Writes `model` as a SavedModel with `serving_default` and `network` signatures.

    The folder is built under a temporary name and renamed when complete.

    Args:
        model: an Axial-DeepLab model (returns the `semantic_logits` / `center_heatmap` /
            `offsets` dict) or a classifier (returns logits).
        output: the SavedModel folder to write.
        dataset_spec: `DatasetSpec` or its name (panoptic models: thing ids, label divisor,
            void label). Defaults to `None`.
        postprocess_options: `center_threshold`, `nms_kernel`, `keep_k_centers`,
            `stuff_area_limit` (panoptic; others take the post-processing defaults).
            Defaults to `None`.
        overwrite: replace an existing `output`. Defaults to `False`.
        **provenance: recorded in the metadata: `registry_name`, `overrides`, `gin_files`,
            `gin_bindings`, `gin_config`, `checkpoint`, `seed`, `mixed_precision`.

    Returns:
        The metadata dict written to `assets/keras_axial_export.json`.

    Example:
        >>> model = keras_axial.models.get_model("axial_deeplab_s", num_classes=6)
        >>> export_saved_model(model, "/tmp/export", dataset_spec="synthetic")
    """
    import tensorflow as tf

    from export import building
    from export import metadata as metadata_lib
    from export import serving
    from keras_axial.utils import atomic_directory

    output = pathlib.Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(
            f"--output={str(output)!r} already exists. Pass --overwrite (overwrite=True) to "
            "replace it."
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    task = building.model_task(model)
    postprocessing = size_rule = None
    if task == "panoptic":
        if dataset_spec is None:
            raise ValueError(
                f"Exporting the panoptic model {model.name!r} needs its dataset spec (thing "
                "classes, label divisor, void label). Received: dataset_spec=None."
            )
        from keras_axial.data import get_dataset_spec

        dataset_spec = get_dataset_spec(dataset_spec)
        postprocessing = building.resolve_postprocessing(model, dataset_spec, postprocess_options)
        size_rule = serving.size_rule_for(model)
    elif dataset_spec is not None or postprocess_options:
        raise ValueError(
            f"{model.name!r} is a classifier: it takes no dataset spec nor post-processing "
            f"options. Received: dataset_spec={dataset_spec!r}, "
            f"postprocess_options={postprocess_options!r}."
        )
    metadata = metadata_lib.build_metadata(
        task=task,
        model=model,
        size_rule=size_rule,
        dataset_spec=dataset_spec if task == "panoptic" else None,
        postprocessing=postprocessing,
        **provenance,
    )
    with tempfile.TemporaryDirectory() as staging:
        metadata_path = pathlib.Path(staging) / metadata_lib.FILE_NAME
        metadata_lib.write_metadata(metadata, metadata_path)
        if task == "panoptic":
            module = serving.PanopticExportModule(
                model, postprocessing, size_rule=size_rule, metadata_path=metadata_path
            )
        else:
            module = serving.ClassifierExportModule(model, metadata_path=metadata_path)
        with atomic_directory(output) as temporary:
            tf.saved_model.save(module, str(temporary), signatures=module.signatures())
    return metadata


# -- command line --------------------------------------------------------------------------------

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    flags.DEFINE_string("model", None, "Registered model name (random weights unless "
                        "--checkpoint), e.g. axial_deeplab_s.", flag_values=flag_values)
    flags.DEFINE_bool("tiny", False, "With --model: the tiny form (tiny_overrides).",
                      flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Seed of random weights.", flag_values=flag_values)
    flags.DEFINE_string("dataset", None, "Dataset spec name or dataset_spec.json path "
                        "(panoptic; default: the experiment's, or 'cityscapes' with --model).",
                        flag_values=flag_values)
    flags.DEFINE_multi_string("gin_file", [], "Experiment gin file(s) that build the model.",
                              flag_values=flag_values)
    flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings, applied last.",
                              flag_values=flag_values)
    flags.DEFINE_string("checkpoint", None, "Weights: a .weights.h5 / .keras file or a "
                        "training run folder (its latest checkpoint).", flag_values=flag_values)
    flags.DEFINE_string("output", None, "SavedModel folder to write.", flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False, "Replace an existing --output.",
                      flag_values=flag_values)
    flags.DEFINE_float("center_threshold", None, "Override the post-processing's center "
                       "threshold.", flag_values=flag_values)
    flags.DEFINE_integer("nms_kernel", None, "Override the center NMS kernel (odd).",
                         flag_values=flag_values)
    flags.DEFINE_integer("keep_k_centers", None, "Override the number of kept centers.",
                         flag_values=flag_values)
    flags.DEFINE_integer("stuff_area_limit", None, "Override the stuff area limit (pixels).",
                         flag_values=flag_values)


def run(flag_values=FLAGS):
    """Builds the model the flags name and exports it; returns the metadata."""
    import keras

    from export import building

    if bool(flag_values.model) == bool(flag_values.gin_file):
        raise app.UsageError(
            "Pass exactly one of --model=<registered name> or --gin_file=<experiment>. "
            f"Received: --model={flag_values.model!r}, --gin_file={flag_values.gin_file!r}."
        )
    if not flag_values.output:
        raise app.UsageError("--output=<SavedModel folder> is required.")
    options = {key: getattr(flag_values, key) for key in _POSTPROCESSING_FLAGS
               if getattr(flag_values, key) is not None}
    # Exports compute in float32 whatever policy the model was trained with.
    keras.mixed_precision.set_global_policy("float32")
    provenance = {"seed": flag_values.seed}
    if flag_values.model:
        from keras_axial import models

        if flag_values.gin_bindings:
            raise app.UsageError("--gin_bindings needs --gin_file.")
        task = models.get_variant(flag_values.model).task
        dataset = flag_values.dataset
        overrides = {}
        if task == "panoptic":
            from keras_axial.data import get_dataset_spec

            dataset = get_dataset_spec(dataset or building.DEFAULT_PANOPTIC_DATASET)
            overrides["num_classes"] = dataset.num_classes
        elif dataset:
            raise app.UsageError(
                f"--dataset applies to panoptic models; {flag_values.model!r} is a classifier."
            )
        model, overrides = building.build_registry_model(
            flag_values.model, tiny=flag_values.tiny, overrides=overrides, seed=flag_values.seed
        )
        provenance.update(registry_name=flag_values.model, overrides=overrides)
    else:
        if flag_values.tiny:
            raise app.UsageError("--tiny applies to --model; tiny gin experiments say so "
                                 "themselves (gin/experiments/synthetic_tiny.gin).")
        settings = building.load_gin_experiment(flag_values.gin_file, flag_values.gin_bindings)
        keras.utils.set_random_seed(flag_values.seed)
        model = settings["model_fn"]()
        dataset = flag_values.dataset or settings["dataset_spec"]
        options = {**(settings["postprocess_options"] or {}), **options}
        provenance.update(
            gin_files=flag_values.gin_file,
            gin_bindings=flag_values.gin_bindings,
            gin_config=settings["gin_config"],
            mixed_precision=settings["mixed_precision"],
        )
    if flag_values.checkpoint:
        provenance["checkpoint"] = building.restore_weights(model, flag_values.checkpoint)
        provenance["seed"] = None
    task = building.model_task(model)
    return export_saved_model(
        model,
        flag_values.output,
        dataset_spec=dataset if task == "panoptic" else None,
        postprocess_options=options if task == "panoptic" else None,
        overwrite=flag_values.overwrite,
        **provenance,
    )


def _summary(metadata, output):
    source = metadata["source"]
    weights = ("random weights" if source["random_weights"]
               else f"weights from {source['checkpoint']}")
    lines = [f"Wrote SavedModel {output} ({metadata['model']['name']}, "
             f"{metadata['model']['num_parameters']:,} parameters, {weights})."]
    for signature, outputs in metadata["outputs"].items():
        spec = metadata["input"][signature]
        lines.append(f"  {signature}: images {spec['dtype']} {spec['shape']} -> "
                     + ", ".join(outputs))
    if metadata["postprocessing"]:
        lines.append(f"  post-processing: {metadata['postprocessing']}")
    return "\n".join(lines)


def main(argv):
    return _cli.run_main(argv, run, lambda metadata: (_summary(metadata, FLAGS.output), 0))


if __name__ == "__main__":
    define_flags()
    app.run(main)

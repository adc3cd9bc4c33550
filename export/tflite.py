"""Converts an exported SavedModel to TFLite, builtin ops only, both signatures in one file.

Usage (from the repository root):

    python -m export.tflite --saved_model=/exports/coco_s --output=/exports/coco_s.tflite
    python -m export.tflite --saved_model=/exports/coco_s --output=/exports/coco_s_int8.tflite \\
        --quantize=int8 --representative_data=/data/val_images/ --representative_size=513

The `.tflite` file holds the two signatures of the SavedModel: `serving_default` (uint8 images
-> panoptic maps, instance scores and ids, center heatmap: the end-to-end graph with the
post-processing) and `network` (float32 images -> raw predictions); classifiers
`serving_default` (-> probabilities) and `network` (-> logits). Their batch, height and width
are dynamic: LiteRT resizes the input at run time (`resize_tensor_input`, which the signature
runner does for you):

    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter(model_path="coco_s.tflite").get_signature_runner("serving_default")
    outputs = runner(images=uint8_images)  # [batch, height, width, 3]

Quantization (`--quantize`):
- `none`: float32.
- `float16`: float16 weights (half the size), float32 compute on CPUs.
- `dynamic`: int8 weights, activations quantized on the fly where kernels support it.
- `int8`: int8 weights and network activations where an int8 kernel exists, float32 elsewhere:
  the post-processing stays float32 (its center NMS compares values for equality, which
  quantization would break). Activation ranges are calibrated on `--representative_data`
  images, or on synthetic panoptic images, by `export.calibration` (the converter's own
  calibrator crashes on the post-processing's loops, tensorflow#75140).

Only TFLite builtins are allowed (`target_spec.supported_ops` has no SELECT_TF_OPS), and the
written model is checked against `export.tflite_ops.ALLOWED_OPS` before it is written.

How the graph is obtained: the SavedModel's network runs axial attention as a loop over chunks
of sequences (fastest with TensorFlow on CPUs), whose tensor lists of unknown shape have no
TFLite builtin form. The tool therefore rebuilds the exported Keras model from the SavedModel's
metadata and variables (same weights, same post-processing settings, same padding) and traces
it with the attention in one pass into a temporary SavedModel, which the converter reads with
`TFLiteConverter.from_saved_model(..., signature_keys=["serving_default", "network"])`.
`python -m export.verify --tflite=...` proves the result equal to the Keras model.

The export's metadata, with a `tflite` section (quantization, signatures, operator counts), is
embedded in the flatbuffer (metadata entry `keras_axial_export`) and written beside it as
`<output>.json`.
"""

import json
import pathlib
import tempfile

import numpy as np
from absl import app
from absl import flags

from export import _cli

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
SIGNATURE_KEYS = ("serving_default", "network")


def _export_module(metadata, model):
    from export import serving

    if metadata["task"] == "panoptic":
        padding = metadata["input"]["network"]["padding"]
        size_rule = None if padding is None else serving.SizeRule(
            padding["multiple"], padding["minimum"]
        )
        return serving.PanopticExportModule(model, metadata["postprocessing"],
                                            size_rule=size_rule)
    return serving.ClassifierExportModule(model)


def representative_images(spec=None, *, count=8, size=(257, 257), seed=0):
    """uint8 calibration images `[height, width, 3]`, all resized to `size`.

    Args:
        spec: comma-separated image files, folders and globs; None uses the synthetic
            panoptic dataset. Defaults to `None`.
        count: at most this many images. Defaults to `8`.
        size: `(height, width)` every image is resized to (calibration feeds one shape).
            Defaults to `(257, 257)`.
        seed: seed of the synthetic images. Defaults to `0`.
    """
    from PIL import Image

    from export import images as images_lib

    if spec is None:
        return [image for _, image in images_lib.synthetic_images(count, size, seed)]
    loaded = images_lib.load_images(spec, "--representative_data")[:count]
    height, width = size
    return [np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
            for _, image in loaded]


def convert_saved_model(
    saved_model,
    output,
    *,
    quantize="none",
    representative_data=None,
    representative_count=8,
    representative_size=(257, 257),
    overwrite=False,
):
    """Converts an export to a `.tflite` file (see the module docstring).

    Args:
        saved_model: SavedModel folder written by `export.saved_model`.
        output: the `.tflite` file to write (its metadata goes to `<output>.json`).
        quantize: one of `QUANTIZATIONS`. Defaults to `"none"`.
        representative_data: calibration images for `int8` (files, folders, globs). Defaults
            to `None` (synthetic images).
        representative_count: calibration images used. Defaults to `8`.
        representative_size: `(height, width)` of the calibration images. Defaults to
            `(257, 257)`.
        overwrite: replace an existing `output`. Defaults to `False`.

    Returns:
        The metadata written (the export's, plus a `tflite` section).
    """
    import tensorflow as tf

    from export import building
    from export import calibration
    from export import metadata as metadata_lib
    from export import runners
    from export import tflite_ops
    from keras_axial.layers import single_pass_attention
    from keras_axial.utils import atomic_write

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize must be one of {QUANTIZATIONS}. Received: {quantize!r}")
    if representative_data is not None and quantize != "int8":
        raise ValueError("--representative_data is only used with --quantize=int8. "
                         f"Received: --quantize={quantize!r}")
    output = pathlib.Path(output)
    if output.suffix != ".tflite":
        raise ValueError(f"--output must end in '.tflite'. Received: {str(output)!r}")
    if output.exists() and not overwrite:
        raise FileExistsError(f"--output={str(output)!r} already exists. Pass --overwrite.")
    if output.parent.exists() and not output.parent.is_dir():
        raise NotADirectoryError(f"The folder of --output={str(output)!r} is a file.")

    metadata = metadata_lib.read_metadata(saved_model)
    weights = runners.SavedModelRunner(saved_model).model_weights
    model = building.rebuild_model(metadata, weights)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        with single_pass_attention():
            module = _export_module(metadata, model)
            tf.saved_model.save(module, staging, signatures=module.signatures())
        converter = tf.lite.TFLiteConverter.from_saved_model(
            staging, signature_keys=list(SIGNATURE_KEYS)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize in ("float16", "dynamic"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        # int8 is calibrated by export.calibration on the float32 model: the converter's
        # calibrator crashes on the post-processing's loops (tensorflow#75140).
        flatbuffer = converter.convert()
    if quantize == "int8":
        images = representative_images(
            representative_data, count=representative_count, size=representative_size
        )
        samples = []
        for image in images:
            samples.append(("serving_default", image[None]))
            samples.append(("network", image[None].astype(np.float32)))
        flatbuffer = calibration.quantize_int8(flatbuffer, samples, network_scope=model.name)
    operators = tflite_ops.check_operators(flatbuffer)
    metadata = dict(metadata)
    metadata["tflite"] = {
        "source_saved_model": str(saved_model),
        "quantization": quantize,
        "representative_data": None if quantize != "int8" else (
            representative_data or f"synthetic x{representative_count}"),
        "signatures": tflite_ops.signature_keys(flatbuffer),
        "dynamic_dimensions": "batch, height, width (resize the input at run time)",
        "operators": dict(sorted(operators.items())),
        "int8_operators": tflite_ops.count_int8_operators(flatbuffer),
    }
    text = json.dumps(metadata, indent=2)
    flatbuffer = tflite_ops.embed_metadata(flatbuffer, text.encode("utf-8"))
    with atomic_write(output) as handle:
        handle.write(flatbuffer)
    with atomic_write(output.with_name(output.name + ".json"), "w") as handle:
        handle.write(text + "\n")
    return metadata


# -- command line --------------------------------------------------------------------------------

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    flags.DEFINE_string("saved_model", None, "SavedModel folder (export.saved_model).",
                        flag_values=flag_values)
    flags.DEFINE_string("output", None, ".tflite file to write.", flag_values=flag_values)
    flags.DEFINE_enum("quantize", "none", list(QUANTIZATIONS), "Quantization.",
                      flag_values=flag_values)
    flags.DEFINE_string("representative_data", None, "int8 calibration images: "
                        "comma-separated files, folders, globs (default: synthetic images).",
                        flag_values=flag_values)
    flags.DEFINE_integer("representative_count", 8, "Calibration images used.",
                         flag_values=flag_values)
    flags.DEFINE_string("representative_size", "257", "Calibration size, HEIGHTxWIDTH or SIZE.",
                        flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False, "Replace an existing --output.",
                      flag_values=flag_values)


def run(flag_values=FLAGS):
    from export import images as images_lib

    if not flag_values.saved_model or not flag_values.output:
        raise app.UsageError("--saved_model and --output are required.")
    if flag_values.representative_count < 1:
        raise app.UsageError(f"--representative_count must be >= 1. Received: "
                             f"{flag_values.representative_count}")
    size = images_lib.parse_sizes(flag_values.representative_size, "--representative_size")
    if len(size) != 1:
        raise app.UsageError("--representative_size takes one size.")
    return convert_saved_model(
        flag_values.saved_model,
        flag_values.output,
        quantize=flag_values.quantize,
        representative_data=flag_values.representative_data,
        representative_count=flag_values.representative_count,
        representative_size=size[0],
        overwrite=flag_values.overwrite,
    )


def _summary(metadata):
    size = pathlib.Path(FLAGS.output).stat().st_size
    tflite = metadata["tflite"]
    return (f"Wrote {FLAGS.output} ({size / 2**20:.1f} MiB, quantization "
            f"{tflite['quantization']}, signatures {', '.join(tflite['signatures'])}, "
            f"{sum(tflite['operators'].values())} operators, builtins only, "
            f"{tflite['int8_operators']} with int8 outputs).")


def main(argv):
    return _cli.run_main(argv, run, lambda metadata: (_summary(metadata), 0))


if __name__ == "__main__":
    define_flags()
    app.run(main)

r"""The main job on the built-in synthetic dataset: `make demo` (`python -m keras_axial.demo`).

From the repository root (it reads `gin/` and uses the `export/` tools):

    python -m keras_axial.demo [--output_dir=demo_output] [--train_steps=N] \
        [--gin_file=gin/experiments/synthetic_tiny.gin] [--gin_bindings=...] [--fresh]

In order, with no download:

1. generates the synthetic panoptic dataset (COCO panoptic format, `dataset/`) and converts it
   to TFRecords (`tfrecords/`): `--num_train_images` training and `--num_val_images` held-out
   images;
2. trains the gin experiment with `model.fit` (progress bars; checkpoints and TensorBoard logs
   in `run/`), evaluating PQ / SQ / RQ and mIoU on the held-out split;
3. exports a SavedModel (`export/saved_model`, post-processing inside) and a TFLite model
   (`export/model.tflite`), proves them equal to the Keras model on held-out images
   (`export.verify`) and scores both on every held-out image;
4. draws `image | ground truth | prediction` pictures (`pictures/*.png`) and writes every number
   to `metrics.json`, then prints a short table of what it did and where the files are.

Running it again resumes: an existing dataset is reused, training continues from its last
checkpoint (or is skipped when finished), exports and pictures are rewritten. `--fresh` starts
over. `--train_steps` and `--gin_file` / `--gin_bindings` run it longer or on a larger variant
(`gin/experiments/synthetic_axial_deeplab_s.gin`: the paper's Axial-DeepLab-S).
"""

import json
import pathlib
import shutil
import sys
import time

from absl import app
from absl import flags

DEFAULT_EXPERIMENT = "gin/experiments/synthetic_tiny.gin"

FLAGS = flags.FLAGS

def define_flags():
    """Defines the command-line flags (when run as a program)."""
    flags.DEFINE_string("output_dir", "demo_output", "Where everything the demo makes goes.")
    flags.DEFINE_multi_string("gin_file", [DEFAULT_EXPERIMENT], "Gin experiment file(s).")
    flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings, applied last.")
    flags.DEFINE_integer("train_steps", None, "Training steps (default: the experiment's).")
    flags.DEFINE_integer("num_train_images", 256, "Synthetic training images.")
    flags.DEFINE_integer("num_val_images", 32, "Synthetic held-out images.")
    flags.DEFINE_integer("seed", 0, "Seed of the synthetic dataset.")
    flags.DEFINE_integer("num_pictures", 8, "Held-out images drawn to pictures/.")
    flags.DEFINE_bool("fresh", False, "Delete --output_dir's previous demo and start over.")


class DemoSettingsError(ValueError):
    """The output folder holds a demo made with other settings."""


def _repo_root_check():
    missing = [name for name in ("gin", "export") if not pathlib.Path(name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"The demo runs from the keras-axial repository root (it needs the folders "
            f"{missing}); the current folder is {str(pathlib.Path.cwd())!r}. Run `make demo` "
            "there."
        )


def prepare_dataset(output_dir, num_train_images, num_val_images, seed):
    """Generates the synthetic dataset once; a second call with the same settings reuses it.

    Returns:
        `(tfrecord_dir, coco_dir, seconds)`; `seconds` is 0 when the dataset was reused.
    """
    from keras_axial.data.synthetic import generate_synthetic_tfrecords
    from keras_axial.utils import atomic_write

    coco_dir = output_dir / "dataset"
    tfrecord_dir = output_dir / "tfrecords"
    settings = {"train": num_train_images, "val": num_val_images, "seed": seed}
    settings_path = output_dir / "dataset_settings.json"
    if settings_path.is_file() and (tfrecord_dir / "dataset_spec.json").is_file():
        previous = json.loads(settings_path.read_text())
        if previous == settings:
            return tfrecord_dir, coco_dir, 0.0
        raise DemoSettingsError(
            f"{str(output_dir)!r} holds a demo dataset made with {previous}, not {settings}. "
            "Pass --fresh to start over, or another --output_dir."
        )
    for folder in (coco_dir, tfrecord_dir):
        shutil.rmtree(folder, ignore_errors=True)
    started = time.time()
    generate_synthetic_tfrecords(
        tfrecord_dir,
        splits={"train": num_train_images, "val": num_val_images},
        seed=seed,
        coco_dir=coco_dir,
        verbose=True,
    )
    with atomic_write(settings_path, "w") as handle:
        json.dump(settings, handle)
    return tfrecord_dir, coco_dir, time.time() - started


def held_out_examples(tfrecord_dir):
    """`(image_id, uint8 image [H, W, 3], panoptic label [H, W])` of every held-out image."""
    import numpy as np

    from keras_axial.data import build_panoptic_dataset

    dataset = build_panoptic_dataset(tfrecord_dir, "val", training=False, batch_size=1)
    examples = []
    for images, targets in dataset:
        height, width = (int(v) for v in targets["image_size"][0])
        image = np.clip(np.round(images[0, :height, :width].numpy()), 0, 255).astype(np.uint8)
        label = targets["panoptic"][0, :height, :width].numpy()
        examples.append((targets["image_id"][0].numpy().decode(), image, label))
    return examples


def score_runner(runner, examples, spec):
    """PQ / SQ / RQ and mIoU of an exported model on `examples`, one image at a time.

    Returns:
        `(metrics, predictions)`: `predictions` holds each image's panoptic map.
    """
    from keras_axial.evaluation import PanopticQuality
    from keras_axial.evaluation import SemanticMeanIoU
    from keras_axial.training.evaluation import panoptic_metrics

    quality = PanopticQuality(spec.num_classes, spec.thing_class_ids, spec.label_divisor,
                              spec.ignore_label)
    mean_iou = SemanticMeanIoU(spec.num_classes, ignore_label=spec.ignore_label)
    predictions = []
    started = time.time()
    for _, image, label in examples:
        outputs = runner("serving_default", image[None])
        quality.update_state(label[None], outputs["panoptic"])
        mean_iou.update_state(label[None] // spec.label_divisor, outputs["semantic"])
        predictions.append(outputs["panoptic"][0])
    seconds = time.time() - started
    metrics = panoptic_metrics(quality, mean_iou)
    metrics["ms_per_image"] = 1000.0 * seconds / max(len(examples), 1)
    return metrics, predictions


def draw_pictures(folder, examples, predictions, spec, count):
    """`image | ground truth | prediction` PNGs of the first `count` held-out images."""
    import matplotlib.pyplot as plt

    from keras_axial.visualization import save_png
    from keras_axial.visualization import side_by_side_figure

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    paths = []
    for (image_id, image, label), prediction in list(zip(examples, predictions))[:count]:
        figure = side_by_side_figure(image, label, prediction, spec,
                                     titles=("Image", "Ground truth", "Prediction (SavedModel)"))
        path = folder / f"heldout_{image_id}.png"
        save_png(path, figure)
        plt.close(figure)
        paths.append(path)
    return paths


def _final_evaluation(summary, gin_files, gin_bindings, run_dir):
    """The metrics of the trained model at its last step (re-evaluated when resumed)."""
    if summary["evaluations"] and summary["evaluations"][-1][0] == summary["step"]:
        return summary["evaluations"][-1][1]
    from keras_axial import evaluate

    return evaluate.run(gin_files, gin_bindings, str(run_dir))["metrics"]


def run_demo(output_dir="demo_output", *, gin_files=(DEFAULT_EXPERIMENT,), gin_bindings=(),
             train_steps=None, num_train_images=256, num_val_images=32, seed=0,
             num_pictures=8, fresh=False):
    """Runs the whole demo (see the module docstring) and returns the `metrics.json` dict."""
    import keras

    from export import building
    from export import runners
    from export import verify as verify_lib
    from export.saved_model import export_saved_model
    from export.tflite import convert_saved_model
    from keras_axial import train
    from keras_axial.data import get_dataset_spec
    from keras_axial.utils import atomic_write

    _repo_root_check()
    output_dir = pathlib.Path(output_dir)
    if fresh and output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    timings = {}

    print("== 1/4 Synthetic dataset ==", flush=True)
    tfrecord_dir, coco_dir, timings["dataset"] = prepare_dataset(
        output_dir, num_train_images, num_val_images, seed)

    print("== 2/4 Training (model.fit) ==", flush=True)
    run_dir = output_dir / "run"
    bindings = [f"DATA_DIR = '{tfrecord_dir}'", *gin_bindings]
    if train_steps is not None:
        bindings.append(f"TRAIN_STEPS = {int(train_steps)}")
    clock = time.time()
    summary = train.run(list(gin_files), bindings, str(run_dir))
    timings["training"] = time.time() - clock
    model = summary["model"]
    evaluation = _final_evaluation(summary, list(gin_files), bindings, run_dir)

    print("== 3/4 Export: SavedModel and TFLite ==", flush=True)
    clock = time.time()
    keras.mixed_precision.set_global_policy("float32")
    settings = building.load_gin_experiment(list(gin_files), bindings)
    spec = get_dataset_spec(settings["dataset_spec"])
    if model.dtype_policy.name != "float32":
        # Mixed-precision runs export in float32 (as `python -m export.saved_model` does).
        trained = model
        model = settings["model_fn"]()
        model.set_weights(trained.get_weights())
    export_dir = output_dir / "export"
    export_dir.mkdir(exist_ok=True)
    saved_model = export_dir / "saved_model"
    tflite = export_dir / "model.tflite"
    checkpoint = building.resolve_checkpoint(run_dir)
    export_saved_model(
        model, saved_model, dataset_spec=spec,
        postprocess_options=settings["postprocess_options"], overwrite=True,
        gin_files=list(gin_files), gin_bindings=bindings, gin_config=settings["gin_config"],
        checkpoint=str(checkpoint),
    )
    convert_saved_model(saved_model, tflite, overwrite=True)
    timings["export"] = time.time() - clock

    print("== 4/4 Held-out images: SavedModel and TFLite ==", flush=True)
    clock = time.time()
    examples = held_out_examples(tfrecord_dir)
    saved_model_runner = runners.SavedModelRunner(saved_model)
    report = verify_lib.verify_export(
        saved_model_runner, [(name, image) for name, image, _ in examples[:3]],
        tflite=tflite, batch_sizes=(1,), keras_model=model,
    )
    print(report.format(1e-4))
    if not report.passed:
        raise RuntimeError("The exports differ from the Keras model (see the report above).")
    saved_model_metrics, predictions = score_runner(saved_model_runner, examples, spec)
    tflite_metrics, _ = score_runner(runners.TFLiteRunner(tflite), examples, spec)
    pictures = draw_pictures(output_dir / "pictures", examples, predictions, spec, num_pictures)
    timings["held_out"] = time.time() - clock
    timings["total"] = time.time() - started

    metrics = {
        "experiment": list(gin_files),
        "gin_bindings": bindings,
        "train_steps": summary["step"],
        "global_batch_size": summary["global_batch_size"],
        "num_parameters": int(model.count_params()),
        "dataset": {"train": num_train_images, "val": num_val_images, "seed": seed},
        "keras": {name: float(value) for name, value in evaluation.items()},
        "saved_model": saved_model_metrics,
        "tflite": tflite_metrics,
        "exports_equal_keras": bool(report.passed),
        "seconds": {name: round(value, 1) for name, value in timings.items()},
        "files": {
            "dataset": str(coco_dir),
            "tfrecords": str(tfrecord_dir),
            "run": str(run_dir),
            "tensorboard": str(run_dir / "logs"),
            "checkpoint": str(checkpoint),
            "saved_model": str(saved_model),
            "tflite": str(tflite),
            "pictures": str(output_dir / "pictures"),
            "metrics": str(output_dir / "metrics.json"),
        },
    }
    with atomic_write(output_dir / "metrics.json", "w") as handle:
        json.dump(metrics, handle, indent=2, sort_keys=True)
    print(summary_table(metrics, len(pictures)))
    return metrics


def summary_table(metrics, num_pictures):
    """The table the demo ends with."""
    keras_metrics = metrics["keras"]
    rows = [
        ("Trained", f"{metrics['train_steps']} steps, batch {metrics['global_batch_size']}, "
                    f"{metrics['num_parameters']:,} parameters "
                    f"({metrics['seconds']['training'] / 60:.1f} min)"),
        ("Held-out PQ (Keras)", f"{keras_metrics['pq']:.3f}  SQ {keras_metrics['sq']:.3f}  "
                                f"RQ {keras_metrics['rq']:.3f}  mIoU {keras_metrics['miou']:.3f} "
                                f"on {int(keras_metrics['num_images'])} images"),
        ("Held-out PQ (SavedModel)", f"{metrics['saved_model']['pq']:.3f}  "
                                     f"({metrics['saved_model']['ms_per_image']:.0f} ms/image)"),
        ("Held-out PQ (TFLite)", f"{metrics['tflite']['pq']:.3f}  "
                                 f"({metrics['tflite']['ms_per_image']:.0f} ms/image)"),
        ("Exports equal Keras", "yes" if metrics["exports_equal_keras"] else "NO"),
        ("Total time", f"{metrics['seconds']['total'] / 60:.1f} min"),
        ("Dataset (COCO format)", metrics["files"]["dataset"]),
        ("TensorBoard logs", metrics["files"]["tensorboard"]),
        ("SavedModel", metrics["files"]["saved_model"]),
        ("TFLite", metrics["files"]["tflite"]),
        ("Pictures", f"{metrics['files']['pictures']} ({num_pictures} PNG)"),
        ("Metrics", metrics["files"]["metrics"]),
    ]
    width = max(len(name) for name, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = ["", "keras-axial demo", rule]
    lines += [f"{name.ljust(width)}  {value}" for name, value in rows]
    lines.append(rule)
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_axial.training.errors import USER_ERRORS

    try:
        run_demo(
            FLAGS.output_dir,
            gin_files=FLAGS.gin_file,
            gin_bindings=FLAGS.gin_bindings,
            train_steps=FLAGS.train_steps,
            num_train_images=FLAGS.num_train_images,
            num_val_images=FLAGS.num_val_images,
            seed=FLAGS.seed,
            num_pictures=FLAGS.num_pictures,
            fresh=FLAGS.fresh,
        )
    except (*USER_ERRORS, DemoSettingsError) as error:
        print(f"keras_axial.demo: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    app.run(main)

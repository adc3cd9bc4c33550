r"""Evaluates a trained checkpoint: `python -m keras_axial.evaluate --gin_file=... --model_dir=DIR`.

Example:

    python -m keras_axial.evaluate \
        --gin_file=gin/experiments/synthetic_tiny.gin --model_dir=/tmp/synthetic_tiny

Builds the experiment's model and evaluation dataset from the same gin files as training,
restores `--checkpoint` (default: the latest checkpoint in `--model_dir`), runs the whole
evaluation set and writes the metrics (PQ / SQ / RQ / mIoU for panoptic experiments, top-1 /
top-5 for classification) atomically to `--output` (default
`DIR/evaluation/evaluate-<step>.json`).
"""

import json
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program: importing the module
    defines none, so other programs can call `run`)."""
    flags.DEFINE_multi_string("gin_file", [], "Gin experiment file(s) the model was trained with.")
    flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings, applied after the files.")
    flags.DEFINE_string("model_dir", None, "The training run's folder.")
    flags.DEFINE_string("checkpoint", None, "Checkpoint file (default: latest in --model_dir).")
    flags.DEFINE_string("output", None, "Metrics JSON path (default: in --model_dir/evaluation).")


def run(gin_files, gin_bindings, model_dir, *, checkpoint=None, output=None):
    """Parses the experiment and evaluates a checkpoint. Returns the result dict."""
    import gin

    from keras_axial.training.gin_config import parse_gin

    if not model_dir:
        raise ValueError("--model_dir is required: the training run's folder.")
    parse_gin(gin_files, gin_bindings)
    train_and_evaluate = gin.get_configurable("train_and_evaluate")
    return train_and_evaluate(
        model_dir=model_dir, mode="evaluate", checkpoint=checkpoint, output=output
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_axial.training.errors import USER_ERRORS

    try:
        result = run(
            FLAGS.gin_file,
            FLAGS.gin_bindings,
            FLAGS.model_dir,
            checkpoint=FLAGS.checkpoint,
            output=FLAGS.output,
        )
    except USER_ERRORS as error:
        print(f"keras_axial.evaluate: error: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"step": result["step"], **result["metrics"]}, indent=2, sort_keys=True))
    print(f"keras_axial.evaluate: wrote {result['output']}")


if __name__ == "__main__":
    define_flags()
    app.run(main)

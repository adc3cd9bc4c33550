r"""Trains an experiment: `python -m keras_axial.train --gin_file=... --model_dir=DIR`.

Example (the CPU demo):

    python -m keras_axial.train \
        --gin_file=gin/experiments/synthetic_tiny.gin --model_dir=/tmp/synthetic_tiny

Running the same command again resumes from the latest checkpoint in `--model_dir`. Several
`--gin_file` and `--gin_bindings` flags may be given; bindings are applied last, e.g.
`--gin_bindings="TRAIN_STEPS = 100"`. Multi-worker runs start the same command on every
worker with `TF_CONFIG` set and a runtime file that selects the `multi_worker` strategy; the
model_dir must be on storage every worker can read.

Everything the run produces is in `--model_dir`: `config.gin` (the experiment, checked on
resume), `operative_config.gin` (every value used), `checkpoints/`, `logs/` (TensorBoard:
losses, learning rate, metrics, predicted panoptic images), `evaluation/metrics-<step>.json`
and `summary.json`.
"""

import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program: importing the module
    defines none, so other programs can call `run`)."""
    flags.DEFINE_multi_string("gin_file", [],
                              "Gin experiment file(s), e.g. gin/experiments/*.gin.")
    flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings, applied after the files.")
    flags.DEFINE_string("model_dir", None, "Run folder: checkpoints, logs, configs, metrics.")
    flags.DEFINE_string(
        "tpu", None,
        "TPU name or grpc:// address (binds get_strategy.tpu_address; needs a TPU runtime).",
    )
    flags.DEFINE_bool(
        "jit_compile", None, "Force XLA on (--jit_compile) or off (--nojit_compile) for this run."
    )


def flag_bindings(tpu=None, jit_compile=None):
    """The gin bindings the convenience flags stand for."""
    bindings = []
    if tpu is not None:
        bindings.append(f"get_strategy.tpu_address = {tpu!r}")
    if jit_compile is not None:
        bindings.append(f"train_and_evaluate.jit_compile = {bool(jit_compile)}")
    return bindings


def run(gin_files, gin_bindings, model_dir, *, tpu=None, jit_compile=None):
    """Parses the experiment, checks `model_dir`, trains. Returns the run summary dict.

    Everything that can be wrong with the command (gin files and bindings, dataset paths,
    `model_dir` holding another experiment) raises before the first training step.
    """
    import gin

    from keras_axial.training.experiment import check_model_dir
    from keras_axial.training.gin_config import parse_gin
    from keras_axial.training.strategies import is_chief_from_environment

    if not model_dir:
        raise ValueError("--model_dir is required: the folder for checkpoints and logs.")
    bindings = list(gin_bindings or ()) + flag_bindings(tpu, jit_compile)
    config_text = parse_gin(gin_files, bindings)
    check_model_dir(model_dir, config_text, write=is_chief_from_environment())
    train_and_evaluate = gin.get_configurable("train_and_evaluate")
    return train_and_evaluate(model_dir=model_dir, operative_config_fn=gin.operative_config_str)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_axial.training.errors import USER_ERRORS

    try:
        summary = run(
            FLAGS.gin_file,
            FLAGS.gin_bindings,
            FLAGS.model_dir,
            tpu=FLAGS.tpu,
            jit_compile=FLAGS.jit_compile,
        )
    except USER_ERRORS as error:
        print(f"keras_axial.train: error: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"keras_axial.train: finished at step {summary['step']} in {FLAGS.model_dir}")


if __name__ == "__main__":
    define_flags()
    app.run(main)

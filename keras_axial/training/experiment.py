"""One training run end to end: strategy, model, optimizer, data, resume, fit, evaluation.

`train_and_evaluate` is what `python -m keras_axial.train` calls after parsing gin; every
argument is plain Python, so the same run can be started from a notebook without gin.
"""

import contextlib
import inspect
import json
import pathlib
import time

import keras
import tensorflow as tf

from keras_axial.training import callbacks as callbacks_module
from keras_axial.training.checkpoints import CheckpointManager, latest_checkpoint
from keras_axial.training.custom_loop import fit_custom_loop, local_element_spec
from keras_axial.training.evaluation import evaluate_classification, evaluate_panoptic
from keras_axial.training.evaluation import make_panoptic_predict_fn
from keras_axial.training.optimizers import build_optimizer
from keras_axial.training.schedules import build_learning_rate_schedule
from keras_axial.training.strategies import get_strategy, is_chief, is_multi_worker
from keras_axial.training.strategies import resolve_batch_sizes
from keras_axial.utils import atomic_write

TASKS = ("panoptic", "classification")
MIXED_PRECISION_POLICIES = (None, "float32", "mixed_bfloat16", "mixed_float16")
LOOPS = ("auto", "fit", "custom")

CHECKPOINT_DIR = "checkpoints"
TRAIN_LOG_DIR = "logs/train"
EVAL_LOG_DIR = "logs/eval"
METRICS_DIR = "evaluation"


class ExperimentMismatchError(ValueError):
    """`model_dir` already holds a run of a different experiment."""


def check_model_dir(model_dir, config_text, *, write=True, file_name="config.gin"):
    """Makes sure `model_dir` is new or holds this same experiment; records the config.

    The resolved experiment (the full gin configuration text) is stored as `config.gin` on
    the first run. A later run with the same `model_dir` must have the same configuration —
    it then resumes — otherwise it stops before anything is built, naming the differing lines.

    Args:
        model_dir: the run folder.
        config_text: the experiment's configuration text.
        write: write `config.gin` when it is missing (default `True`; `False` on non-chief
            workers).
        file_name: the stored file (default `"config.gin"`).

    Raises:
        ExperimentMismatchError: `model_dir` holds a different experiment.
    """
    import difflib

    model_dir = pathlib.Path(model_dir)
    stored_path = model_dir / file_name
    if stored_path.exists():
        stored = stored_path.read_text(encoding="utf-8")
        if stored != config_text:
            diff = list(
                difflib.unified_diff(
                    stored.splitlines(),
                    config_text.splitlines(),
                    fromfile=f"{stored_path} (stored)",
                    tofile="this command",
                    lineterm="",
                    n=0,
                )
            )
            shown = "\n".join(diff[:40]) + ("\n..." if len(diff) > 40 else "")
            raise ExperimentMismatchError(
                f"--model_dir={str(model_dir)!r} holds a different experiment than this "
                f"command (its configuration is in {str(stored_path)!r}). Differences:\n{shown}\n"
                "To resume that run, use its exact gin files and bindings; to start this "
                "experiment, choose a new --model_dir (or delete the old one)."
            )
        return
    if model_dir.exists() and (model_dir / CHECKPOINT_DIR).exists():
        raise ExperimentMismatchError(
            f"--model_dir={str(model_dir)!r} holds checkpoints but no {file_name!r}, so it "
            "cannot be told whether they belong to this experiment. Choose a new --model_dir."
        )
    if write:
        model_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(stored_path, "w") as handle:
            handle.write(config_text)


@contextlib.contextmanager
def _dtype_policy(name):
    previous = keras.mixed_precision.dtype_policy()
    if name is not None:
        keras.mixed_precision.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def _call_dataset_fn(dataset_fn, input_context, per_replica_batch_size, seed):
    """Calls `dataset_fn(input_context=, batch_size=, [seed=])` (`seed` only if accepted).

    `batch_size` is the per-replica batch size (`keras_axial.data.panoptic_input_fn` and
    `classification_input_fn` follow this contract).
    """
    try:
        parameters = inspect.signature(dataset_fn).parameters
    except (TypeError, ValueError):
        parameters = {}
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    kwargs = {"input_context": input_context, "batch_size": per_replica_batch_size}
    if seed is not None and ("seed" in parameters or accepts_any):
        kwargs["seed"] = seed
    return dataset_fn(**kwargs)


def default_loss(task, dataset_spec=None, loss_options=None):
    """The task's loss: `PanopticLoss` (paper weights) or sparse categorical cross-entropy."""
    options = dict(loss_options or {})
    if task == "panoptic":
        from keras_axial.losses import PanopticLoss

        if dataset_spec is not None:
            options.setdefault("ignore_label", dataset_spec.ignore_label)
        return PanopticLoss(**options)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, **options)


def train_and_evaluate(
    model_dir,
    *,
    model_fn,
    train_dataset_fn,
    train_steps,
    eval_dataset_fn=None,
    task="panoptic",
    dataset_spec=None,
    strategy_fn=get_strategy,
    global_batch_size=None,
    per_replica_batch_size=None,
    eval_batch_size=1,
    eval_interval=None,
    eval_max_batches=None,
    checkpoint_interval=1000,
    max_checkpoints_to_keep=3,
    summary_interval=100,
    num_summary_images=3,
    optimizer_fn=build_optimizer,
    learning_rate_fn=build_learning_rate_schedule,
    loss_options=None,
    postprocess_options=None,
    mixed_precision=None,
    jit_compile=False,
    seed=0,
    deterministic=False,
    loop="auto",
    verbose="auto",
    operative_config_fn=None,
    mode="train",
    checkpoint=None,
    output=None,
):
    """Trains a model with periodic evaluation, checkpoints and TensorBoard summaries.

    Training is counted in optimizer steps. A Keras epoch is one evaluation interval: the
    progress bar shows one epoch per interval, and PQ / SQ / RQ / mIoU (panoptic) or top-1 /
    top-5 (classification) are computed at its end. Re-running the same command with the same
    `model_dir` resumes from the latest checkpoint (also mid-epoch) and ends at `train_steps`.
    With `mode="evaluate"` the same configuration evaluates a checkpoint instead.

    Args:
        model_dir: run folder: `checkpoints/`, `logs/train`, `logs/eval`, `evaluation/`
            (`metrics-<step>.json`), `operative_config.gin`, `summary.json`.
        model_fn: `model_fn(**kwargs) -> keras.Model`, called under the strategy scope with
            `sync_batch_norm=True` when there is more than one replica.
        train_dataset_fn: `fn(input_context=, batch_size=, [seed=]) -> tf.data.Dataset`
            repeated forever, of `batch_size`-image batches: `batch_size` is the per-replica
            batch size, and `input_context` says which shard this input pipeline reads
            (`keras_axial.data.panoptic_input_fn` / `classification_input_fn`; gin binds a
            reference to them).
        train_steps: total optimizer steps.
        eval_dataset_fn: same signature, a finite evaluation dataset, called with a
            single-replica input context and `eval_batch_size` (default `None`: no
            evaluation). Panoptic evaluation needs targets `"panoptic"`.
        task: `"panoptic"` (default) or `"classification"`.
        dataset_spec: the `DatasetSpec` or its registered name (required for panoptic
            evaluation and the loss's ignore label).
        strategy_fn: returns the `tf.distribute.Strategy` (default `get_strategy`, which gin
            configures through `gin/runtime/*.gin`).
        global_batch_size: images per step over all replicas (default `None`).
        per_replica_batch_size: images per replica per step (default `None`). Exactly one of
            the two is set.
        eval_batch_size: evaluation batch size (default 1, as deeplab2).
        eval_interval: steps between evaluations = steps per Keras epoch (default `None`:
            `train_steps`, one evaluation at the end).
        eval_max_batches: evaluate periodically on at most this many batches (default `None`:
            all; `mode="evaluate"` always uses all).
        checkpoint_interval: steps between checkpoints (default 1000).
        max_checkpoints_to_keep: default 3.
        summary_interval: steps between TensorBoard scalar summaries (default 100).
        num_summary_images: predicted panoptic images per evaluation in TensorBoard
            (default 3).
        optimizer_fn: `optimizer_fn(learning_rate) -> Optimizer` (default `build_optimizer`).
        learning_rate_fn: `learning_rate_fn() -> schedule` (default
            `build_learning_rate_schedule`, configured by gin).
        loss_options: keyword arguments of `PanopticLoss` (default `None`: paper weights).
        postprocess_options: `panoptic_deeplab_postprocess` options for evaluation (default
            `None`).
        mixed_precision: `None` (default: leave the global policy), `"float32"`,
            `"mixed_bfloat16"` or `"mixed_float16"` (the optimizer is then wrapped in a
            `LossScaleOptimizer`).
        jit_compile: XLA-compile training and evaluation steps (default `False`; Keras leaves
            XLA off on CPU and under strategies unless asked).
        seed: seeds Python, NumPy, TensorFlow and Keras (default 0).
        deterministic: turn on TensorFlow op determinism (default `False`): same seed, same
            config and same machine then give identical weights.
        loop: `"auto"` (default: the custom loop under multi-worker strategies, `model.fit`
            otherwise), `"fit"` or `"custom"`.
        verbose: Keras verbosity for the chief (default `"auto"`: progress bar).
        operative_config_fn: returns the resolved configuration text, written to
            `operative_config.gin` once everything is built (default `None`).
        mode: `"train"` (default) or `"evaluate"`: restore `checkpoint` and evaluate it.
        checkpoint: `mode="evaluate"` only: the checkpoint file (default `None`: the latest
            in `model_dir`).
        output: `mode="evaluate"` only: the metrics JSON path (default `None`:
            `model_dir/evaluation/evaluate-<step>.json`).

    Returns:
        Training: a dict with `step` (final step), `history` (Keras history dict),
        `evaluations` (list of `(step, metrics)`), `resumed_from` (step or `None`) and `model`.
        Evaluation: a dict with `step`, `checkpoint`, `metrics`, `output` and `model`.

    Example:
        >>> result = train_and_evaluate(
        ...     "/tmp/run", model_fn=lambda **kw: get_model("axial_deeplab_s", **kw),
        ...     train_dataset_fn=train_fn, eval_dataset_fn=eval_fn, train_steps=1000,
        ...     dataset_spec=get_dataset_spec("synthetic"), global_batch_size=8)
    """
    _validate_arguments(
        task, train_steps, eval_interval, checkpoint_interval, mixed_precision, loop,
        dataset_spec, eval_dataset_fn, mode,
    )
    # A run shorter than one evaluation interval is one epoch of its own length.
    eval_interval = min(eval_interval or train_steps, train_steps)
    model_dir = pathlib.Path(model_dir)
    if dataset_spec is not None:
        from keras_axial.data import get_dataset_spec

        dataset_spec = get_dataset_spec(dataset_spec)

    strategy = strategy_fn() if mode == "train" else tf.distribute.get_strategy()
    multi_worker = is_multi_worker(strategy)
    chief = is_chief(strategy)
    if multi_worker and loop == "fit":
        raise ValueError(
            "loop='fit' cannot run under a multi-worker strategy: Keras 3's model.fit fails "
            "there (keras-team/keras#20585). Use loop='auto' or 'custom'."
        )
    num_replicas = strategy.num_replicas_in_sync
    global_batch, per_replica_batch = resolve_batch_sizes(
        num_replicas,
        global_batch_size=global_batch_size,
        per_replica_batch_size=per_replica_batch_size,
    )
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()

    # Data first: a missing path or a broken pipeline fails before any model is built.
    checkpoint_dir = model_dir / CHECKPOINT_DIR
    latest = latest_checkpoint(checkpoint_dir)
    start_step = latest["step"] if latest else 0
    train_data = None
    if mode == "train":
        # A resumed run draws a fresh data order instead of replaying the first batches.
        data_seed = seed + start_step

        def distributed_train_fn(input_context):
            return _call_dataset_fn(train_dataset_fn, input_context, per_replica_batch, data_seed)

        train_data = strategy.distribute_datasets_from_function(distributed_train_fn)
    eval_data = None
    if eval_dataset_fn is not None and chief:
        eval_data = _call_dataset_fn(
            eval_dataset_fn, tf.distribute.InputContext(), eval_batch_size, None
        )
    if mode == "evaluate" and eval_data is None:
        raise ValueError("mode='evaluate' needs eval_dataset_fn. Received: eval_dataset_fn=None")

    with _dtype_policy(mixed_precision):
        with strategy.scope():
            model_kwargs = {"sync_batch_norm": True} if num_replicas > 1 else {}
            model = model_fn(**model_kwargs)
            optimizer = optimizer_fn(learning_rate=learning_rate_fn())
            if mixed_precision == "mixed_float16" and not isinstance(
                optimizer, keras.optimizers.LossScaleOptimizer
            ):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            metrics = (
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
                if task == "classification"
                else None
            )
            model.compile(
                optimizer=optimizer,
                loss=default_loss(task, dataset_spec, loss_options),
                metrics=metrics,
                jit_compile=jit_compile,
            )
            _build_model(model, train_data if train_data is not None else eval_data)
            manager = CheckpointManager(
                checkpoint_dir,
                model,
                max_to_keep=max_checkpoints_to_keep,
                write=chief and mode == "train",
            )
            if mode == "evaluate":
                return _evaluate_checkpoint(
                    model, manager, checkpoint, model_dir, output,
                    _make_evaluate_fn(
                        task, eval_data, dataset_spec, postprocess_options, None,
                        num_summary_images, jit_compile,
                    ),
                )
            if latest is not None:
                manager.restore(latest["path"])

        if operative_config_fn is not None and chief:
            model_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(model_dir / "operative_config.gin", "w") as handle:
                handle.write(operative_config_fn())

        progress = callbacks_module.TrainingProgress(start_step, train_steps)
        evaluate_fn = _make_evaluate_fn(
            task, eval_data, dataset_spec, postprocess_options, eval_max_batches,
            num_summary_images, jit_compile,
        )
        callback_list = [
            callbacks_module.StepCounter(progress),
            # Before the checkpoint callback: a NaN step is never saved.
            callbacks_module.NonFiniteLossGuard(progress, manager),
            callbacks_module.PeriodicCheckpoint(manager, progress, checkpoint_interval),
            callbacks_module.TensorBoardSummaries(
                model_dir / TRAIN_LOG_DIR, progress, summary_interval, enabled=chief
            ),
        ]
        evaluation = None
        if evaluate_fn is not None:
            evaluation = callbacks_module.PeriodicEvaluation(
                evaluate_fn,
                progress,
                log_dir=model_dir / EVAL_LOG_DIR,
                metrics_dir=model_dir / METRICS_DIR,
                enabled=chief,
            )
            callback_list.append(evaluation)
        callback_list.append(callbacks_module.StepBoundaries(progress, eval_interval))

        initial_epoch, epochs = callbacks_module.epoch_plan(start_step, train_steps, eval_interval)
        started = time.time()
        history = {}
        if start_step >= train_steps:
            print(f"{model_dir}: already trained for {start_step} >= {train_steps} steps.")
        else:
            run_verbose = verbose if chief else 0
            if loop == "custom" or (loop == "auto" and multi_worker):
                result = fit_custom_loop(
                    model,
                    strategy,
                    train_data,
                    epochs=epochs,
                    steps_per_epoch=eval_interval,
                    initial_epoch=initial_epoch,
                    callbacks=callback_list,
                    verbose=run_verbose,
                    jit_compile=jit_compile,
                )
            else:
                result = model.fit(
                    train_data,
                    epochs=epochs,
                    steps_per_epoch=eval_interval,
                    initial_epoch=initial_epoch,
                    callbacks=callback_list,
                    verbose=run_verbose,
                    shuffle=False,
                )
            history = result.history if result is not None else {}
        summary = {
            "step": progress.step,
            "train_steps": train_steps,
            "resumed_from": start_step if latest else None,
            "global_batch_size": global_batch,
            "num_replicas": num_replicas,
            "seconds": time.time() - started,
            "evaluations": evaluation.history if evaluation else [],
            "history": {k: [float(x) for x in v] for k, v in history.items()},
        }
        if chief:
            model_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(model_dir / "summary.json", "w") as handle:
                json.dump(summary, handle, indent=2, sort_keys=True)
        summary["model"] = model
        return summary


def _evaluate_checkpoint(model, manager, checkpoint, model_dir, output, evaluate_fn):
    entry = manager.restore(checkpoint)
    if entry is None:
        raise FileNotFoundError(
            f"No checkpoint in {str(manager.directory)!r} to evaluate. Train first, or pass "
            "--checkpoint=<path to a ckpt-<step>.weights.h5 file>."
        )
    metrics, _ = evaluate_fn(model, entry["step"])
    if output is None:
        output = model_dir / METRICS_DIR / f"evaluate-{entry['step']:09d}.json"
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = {"step": entry["step"], "checkpoint": entry["path"], "metrics": metrics}
    with atomic_write(output, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    return {**payload, "output": str(output), "model": model}


def _validate_arguments(
    task, train_steps, eval_interval, checkpoint_interval, mixed_precision, loop, spec, eval_fn,
    mode,
):
    if mode not in ("train", "evaluate"):
        raise ValueError(f"mode must be 'train' or 'evaluate'. Received: mode={mode!r}")
    if task not in TASKS:
        raise ValueError(f"Unknown task. Received: task={task!r}; expected one of {TASKS}.")
    for name, value in (("train_steps", train_steps), ("checkpoint_interval", checkpoint_interval)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    if eval_interval is not None and (not isinstance(eval_interval, int) or eval_interval < 1):
        raise ValueError(
            f"eval_interval must be a positive integer. Received: eval_interval={eval_interval!r}"
        )
    if mixed_precision not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"Unknown mixed_precision policy. Received: mixed_precision={mixed_precision!r}; "
            f"expected one of {MIXED_PRECISION_POLICIES}."
        )
    if loop not in LOOPS:
        raise ValueError(f"Unknown loop. Received: loop={loop!r}; expected one of {LOOPS}.")
    if task == "panoptic" and eval_fn is not None and spec is None:
        raise ValueError("Panoptic evaluation needs dataset_spec. Received: dataset_spec=None")


def _build_model(model, dataset):
    """Creates model and optimizer variables so a checkpoint can be restored before `fit`."""
    if not model.built:
        spec = local_element_spec(dataset.element_spec)
        images = spec[0] if isinstance(spec, tuple) else spec
        model.build(tuple(images.shape))
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _make_evaluate_fn(
    task, eval_data, dataset_spec, postprocess_options, max_batches, num_images, jit_compile
):
    if eval_data is None:
        return None
    if task == "classification":
        return lambda model, step: evaluate_classification(
            model, eval_data, max_batches=max_batches, jit_compile=jit_compile
        )
    cache = {}

    def evaluate(model, step):
        if "predict" not in cache:
            cache["predict"] = make_panoptic_predict_fn(
                model, dataset_spec, postprocess_options, jit_compile
            )
        return evaluate_panoptic(
            model,
            eval_data,
            dataset_spec,
            max_batches=max_batches,
            num_images=num_images,
            predict_fn=cache["predict"],
        )

    return evaluate

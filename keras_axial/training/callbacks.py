"""Callbacks shared by `model.fit` and the multi-worker loop.

Training is counted in optimizer steps, as in the paper and deeplab2 (e.g. 60k iterations);
a Keras "epoch" is one evaluation interval. `TrainingProgress` holds the global step, and
`StepBoundaries` ends epochs and the run at exact global steps, so a run resumed from a
mid-epoch checkpoint evaluates at the same steps and ends at the same total step count as an
uninterrupted one.
"""

import math
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf; the run stopped and kept its last good checkpoint."""


class TrainingProgress:
    """The global training step, shared by the callbacks of one run.

    Args:
        step: steps already taken when this process starts (default 0; the restored
            checkpoint's step when resuming).
        total_steps: steps the run ends at (default `None`: unknown).
    """

    def __init__(self, step=0, total_steps=None):
        self.step = int(step)
        self.total_steps = total_steps

    @property
    def finished(self):
        return self.total_steps is not None and self.step >= self.total_steps


class StepCounter(keras.callbacks.Callback):
    """Advances `progress.step` after every training batch. Put it first in the list."""

    def __init__(self, progress):
        super().__init__()
        self.progress = progress

    def on_train_batch_end(self, batch, logs=None):
        self.progress.step += 1


class StepBoundaries(keras.callbacks.Callback):
    """Ends each Keras epoch at a multiple of `steps_per_epoch` global steps and the run at
    `progress.total_steps`. Put it last in the list.

    `model.fit` cannot start in the middle of an epoch; after a mid-epoch resume, this
    callback cuts the first epoch short where the interrupted run would have ended it (it sets
    `model.stop_training` at the boundary and clears it again at the epoch's end, unless
    another callback asked to stop).

    Args:
        progress: the run's `TrainingProgress`.
        steps_per_epoch: global steps per epoch (evaluation interval).
    """

    def __init__(self, progress, steps_per_epoch):
        super().__init__()
        self.progress = progress
        self.steps_per_epoch = int(steps_per_epoch)
        self._cut = False

    def on_epoch_begin(self, epoch, logs=None):
        self._cut = False

    def on_train_batch_end(self, batch, logs=None):
        if self.model.stop_training:
            return  # Another callback stopped the run.
        if self.progress.finished or self.progress.step % self.steps_per_epoch == 0:
            self.model.stop_training = True
            self._cut = True

    def on_epoch_end(self, epoch, logs=None):
        if self._cut and not self.progress.finished:
            self.model.stop_training = False


def epoch_plan(start_step, total_steps, steps_per_epoch):
    """`(initial_epoch, epochs)` for `model.fit` to run global steps `start_step .. total_steps`.

    Example:
        >>> epoch_plan(250, 1000, 100)  # resume inside epoch 2, end after epoch 9
        (2, 10)
    """
    return start_step // steps_per_epoch, math.ceil(total_steps / steps_per_epoch)


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training with `NonFiniteLossError` as soon as the loss is NaN or Inf.

    The error is raised from `on_train_batch_end`, so `model.fit` ends at once, no later
    callback of that batch runs and `on_train_end` never runs: nothing saves the broken
    weights, and the last checkpoint on disk is the last good state.

    Args:
        progress: the run's `TrainingProgress`.
        checkpoint_manager: the run's `CheckpointManager` (default `None`), named in the error.
    """

    def __init__(self, progress, checkpoint_manager=None):
        super().__init__()
        self.progress = progress
        self.checkpoint_manager = checkpoint_manager

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(np.asarray(loss))
        if math.isfinite(loss):
            return
        latest = self.checkpoint_manager.latest() if self.checkpoint_manager else None
        where = (
            f"the last good checkpoint is {latest['path']} (step {latest['step']})"
            if latest
            else "no checkpoint had been written yet"
        )
        raise NonFiniteLossError(
            f"The training loss became {loss} at step {self.progress.step}; training stopped "
            f"and {where}. Lower the learning rate, add warm-up or gradient clipping "
            "(build_optimizer.global_clipnorm), or check the data for broken labels, and train "
            "in a new --model_dir (this one refuses a changed configuration); if the cause was "
            "transient, running the same command again resumes from that checkpoint."
        )


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint every `interval` global steps and when training ends.

    Args:
        manager: the run's `CheckpointManager`.
        progress: the run's `TrainingProgress`.
        interval: global steps between checkpoints.
        metadata_fn: returns extra JSON metadata for each save (default `None`).
    """

    def __init__(self, manager, progress, interval, metadata_fn=None):
        super().__init__()
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(
                f"The checkpoint interval must be a positive integer. Received: {interval!r}"
            )
        self.manager = manager
        self.progress = progress
        self.interval = interval
        self.metadata_fn = metadata_fn
        self._last_saved = None

    def _save(self, logs=None):
        if self._last_saved == self.progress.step:
            return
        metadata = {}
        loss = (logs or {}).get("loss")
        if loss is not None:
            metadata["loss"] = float(np.asarray(loss))
        if self.metadata_fn is not None:
            metadata.update(self.metadata_fn())
        self.manager.save(self.progress.step, metadata)
        self._last_saved = self.progress.step

    def on_train_batch_end(self, batch, logs=None):
        if self.progress.step % self.interval == 0:
            self._save(logs)

    def on_train_end(self, logs=None):
        self._save(logs)


class TensorBoardSummaries(keras.callbacks.Callback):
    """Writes training scalars (losses, metrics, learning rate) against the global step.

    Keras' `TensorBoard` callback indexes epoch summaries by epoch; here every summary uses
    the global step, so training curves, evaluation metrics and images of a resumed run line
    up with those written before the interruption.

    Args:
        log_dir: folder for the `train` event files.
        progress: the run's `TrainingProgress`.
        interval: global steps between scalar summaries (default 100).
        enabled: `False` on non-chief workers, which write nothing (default `True`).
    """

    def __init__(self, log_dir, progress, interval=100, enabled=True):
        super().__init__()
        self.log_dir = pathlib.Path(log_dir)
        self.progress = progress
        self.interval = max(1, int(interval))
        self.enabled = enabled
        self._writer = None

    @property
    def writer(self):
        if self._writer is None and self.enabled:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        return self._writer

    def on_train_batch_end(self, batch, logs=None):
        if self.enabled and self.progress.step % self.interval == 0:
            self._write(logs)

    def on_epoch_end(self, epoch, logs=None):
        # Short runs and the last steps of an interval are logged too.
        if self.enabled and self.progress.step % self.interval:
            self._write({k: v for k, v in (logs or {}).items() if not k.startswith("val_")})

    def _write(self, logs):
        with self.writer.as_default(step=self.progress.step):
            for name, value in (logs or {}).items():
                value = np.asarray(value)
                if value.ndim == 0 and np.issubdtype(value.dtype, np.number):
                    tf.summary.scalar(name, float(value))
            tf.summary.scalar("learning_rate", current_learning_rate(self.model.optimizer))
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def current_learning_rate(optimizer):
    """The learning rate the optimizer uses at its current iteration, as a float."""
    return float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))


class PeriodicEvaluation(keras.callbacks.Callback):
    """Evaluates at the end of every epoch (evaluation interval) and adds `val_*` logs.

    Args:
        evaluate_fn: `evaluate_fn(model, step) -> (metrics, images)`: a dict of scalar
            metrics and a dict of `[N, H, W, 3]` uint8 images (may be empty).
        progress: the run's `TrainingProgress`.
        log_dir: folder for the `eval` TensorBoard event files (default `None`: none).
        metrics_dir: folder for one `metrics-<step>.json` per evaluation (default `None`).
        enabled: `False` on non-chief workers, which skip evaluation (default `True`).
    """

    def __init__(self, evaluate_fn, progress, log_dir=None, metrics_dir=None, enabled=True):
        super().__init__()
        self.evaluate_fn = evaluate_fn
        self.progress = progress
        self.log_dir = log_dir
        self.metrics_dir = metrics_dir
        self.enabled = enabled
        self._writer = None
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        if not self.enabled:
            return
        metrics, images = self.evaluate_fn(self.model, self.progress.step)
        self.history.append((self.progress.step, metrics))
        if logs is not None:
            logs.update(
                {f"val_{name}": value for name, value in metrics.items() if name != "num_images"}
            )
        if self.metrics_dir is not None:
            write_metrics_json(self.metrics_dir, self.progress.step, metrics)
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(str(self.log_dir))
            with self._writer.as_default(step=self.progress.step):
                for name, value in metrics.items():
                    tf.summary.scalar(name, float(value))
                for name, batch in (images or {}).items():
                    tf.summary.image(name, np.asarray(batch), max_outputs=len(batch))
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_metrics_json(directory, step, metrics):
    """Writes `metrics-<step>.json` atomically into `directory`; returns its path."""
    import json

    from keras_axial.utils import atomic_write

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"metrics-{int(step):09d}.json"
    payload = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
    with atomic_write(path, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    return os.fspath(path)

"""Step-numbered training checkpoints that are never half-written.

A checkpoint is one `ckpt-<step>.weights.h5` file (model weights and every optimizer variable:
moments, Lookahead slow weights, loss scale, step counters) plus its entry in `checkpoint.json`,
the index that names the checkpoints to trust. Both are written to a temporary name and
renamed, and the index is written last, so a process killed at any instant leaves either the
previous checkpoint or the new one, and the next start removes whatever temporary file the
kill left behind.
"""

import json
import os
import pathlib
import shutil
import tempfile
import time

import numpy as np

from keras_axial.utils import atomic_write

INDEX_FILE = "checkpoint.json"
_PREFIX = "ckpt-"
_SUFFIX = ".weights.h5"
_TEMPORARY_PREFIX = ".tmp-"


class NonFiniteWeightsError(FloatingPointError):
    """Raised instead of saving a checkpoint whose weights hold NaN or Inf."""


class CheckpointManager:
    """Saves and restores the training state of one model in one folder.

    Args:
        directory: folder for the checkpoints (created if missing).
        model: the compiled `keras.Model`; its optimizer's variables are saved with it.
        max_to_keep: how many recent checkpoints stay on disk (default 3; older ones are
            deleted after a newer one is safely written).
        write: whether this process writes (default `True`). Under a multi-worker strategy
            every worker must take part in saving (reading some distributed variables is a
            collective operation), but only the chief keeps the files: the others write to a
            private temporary folder that is deleted right away.

    Example:
        >>> manager = CheckpointManager(model_dir / "checkpoints", model)
        >>> manager.save(step=1000, metadata={"loss": 0.7})
        >>> manager.restore()["step"]
        1000
    """

    def __init__(self, directory, model, *, max_to_keep=3, write=True):
        if not isinstance(max_to_keep, int) or max_to_keep < 1:
            raise ValueError(
                f"max_to_keep must be a positive integer. Received: max_to_keep={max_to_keep!r}"
            )
        self.directory = pathlib.Path(directory)
        self.model = model
        self.max_to_keep = max_to_keep
        self.write = write
        if write:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.remove_partial_files()

    # -- reading -------------------------------------------------------------------------------

    def _read_index(self):
        path = self.directory / INDEX_FILE
        if not path.exists():
            return {"checkpoints": []}
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            index["checkpoints"]
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"The checkpoint index {str(path)!r} is not valid JSON with a 'checkpoints' "
                f"list ({error}). Delete the folder to start over."
            ) from error
        return index

    @property
    def checkpoints(self):
        """The trusted checkpoints, oldest first: dicts with `step`, `path` and metadata."""
        entries = []
        for entry in self._read_index()["checkpoints"]:
            entry = dict(entry)
            entry["path"] = str(self.directory / entry["file"])
            entries.append(entry)
        return entries

    def latest(self):
        """The newest trusted checkpoint (a dict with `step` and `path`), or `None`."""
        entries = self.checkpoints
        return entries[-1] if entries else None

    def remove_partial_files(self):
        """Deletes temporary files a killed save left, and checkpoints the index does not name.

        Returns:
            The list of removed paths.
        """
        if not self.directory.is_dir():
            return []
        trusted = {entry["file"] for entry in self._read_index()["checkpoints"]}
        removed = []
        for path in self.directory.iterdir():
            name = path.name
            partial = name.startswith(_TEMPORARY_PREFIX) or (
                name.startswith("." + INDEX_FILE) and name.endswith(".tmp")
            )
            orphan = name.startswith(_PREFIX) and name.endswith(_SUFFIX) and name not in trusted
            if partial or orphan:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(str(path))
        return removed

    # -- writing -------------------------------------------------------------------------------

    def save(self, step, metadata=None):
        """Writes the checkpoint of training step `step`.

        Args:
            step: number of optimizer steps taken so far (an int).
            metadata: JSON-serialisable dict stored with the entry (default `None`).

        Returns:
            The checkpoint path (the temporary path on non-writing workers).

        Raises:
            NonFiniteWeightsError: a weight holds NaN or Inf; nothing is written, so the
                previous checkpoint stays the latest.
        """
        step = int(step)
        optimizer = getattr(self.model, "optimizer", None)
        variables = list(self.model.weights) + list(optimizer.variables if optimizer else [])
        bad = [v.path for v in variables if not _is_finite(v)]
        if bad:
            raise NonFiniteWeightsError(
                f"Not saving the checkpoint of step {step}: {len(bad)} variable(s) hold NaN or "
                f"Inf (first: {bad[0]!r}). The last good checkpoint is kept: "
                f"{(self.latest() or {}).get('path')}."
            )
        file_name = f"{_PREFIX}{step:09d}{_SUFFIX}"
        if not self.write:
            scratch = pathlib.Path(tempfile.mkdtemp(prefix="keras_axial_worker_ckpt_"))
            try:
                self.model.save_weights(str(scratch / file_name))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            return str(scratch / file_name)

        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / file_name
        temporary = self.directory / f"{_TEMPORARY_PREFIX}{os.getpid()}-{file_name}"
        try:
            self.model.save_weights(str(temporary))
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

        index = self._read_index()
        entries = [e for e in index["checkpoints"] if e["step"] != step]
        entry = {"step": step, "file": file_name, "time": time.time()}
        entry.update(metadata or {})
        entries.append(entry)
        entries.sort(key=lambda e: e["step"])
        dropped, kept = entries[: -self.max_to_keep], entries[-self.max_to_keep :]
        index["checkpoints"] = kept
        with atomic_write(self.directory / INDEX_FILE, "w") as handle:
            json.dump(index, handle, indent=2, sort_keys=True)
        # Old files go only after the index stops naming them.
        for old in dropped:
            (self.directory / old["file"]).unlink(missing_ok=True)
        return str(final)

    # -- restoring -----------------------------------------------------------------------------

    def restore(self, path=None):
        """Loads a checkpoint into the model and its optimizer.

        Args:
            path: a checkpoint file (default `None`: the latest trusted one).

        Returns:
            The checkpoint's entry (`step`, `path` and metadata), or `None` when `path` is
            `None` and there is no checkpoint yet.
        """
        if path is None:
            entry = self.latest()
            if entry is None:
                return None
        else:
            path = pathlib.Path(path)
            if not path.is_file():
                raise FileNotFoundError(
                    f"Checkpoint {str(path)!r} does not exist. Expected a "
                    f"'{_PREFIX}<step>{_SUFFIX}' file written by keras_axial.train."
                )
            entry = next(
                (e for e in self.checkpoints if pathlib.Path(e["path"]) == path),
                {"step": step_of(path), "file": path.name},
            )
            entry["path"] = str(path)
        restore_weights(self.model, entry["path"])
        return entry


def latest_checkpoint(directory):
    """The newest trusted checkpoint entry in `directory` (`step`, `path`, ...), or `None`.

    Reads only the index, so it can run before any model exists.
    """
    directory = pathlib.Path(directory)
    if not (directory / INDEX_FILE).exists():
        return None
    manager = CheckpointManager.__new__(CheckpointManager)
    manager.directory = directory
    return manager.latest()


def step_of(path):
    """The training step encoded in a checkpoint file name (`ckpt-000001200.weights.h5`)."""
    name = pathlib.Path(path).name
    if not (name.startswith(_PREFIX) and name.endswith(_SUFFIX)):
        raise ValueError(
            f"Not a keras_axial checkpoint name. Received: {name!r}; expected "
            f"'{_PREFIX}<step>{_SUFFIX}'."
        )
    try:
        return int(name[len(_PREFIX) : -len(_SUFFIX)])
    except ValueError as error:
        raise ValueError(f"No step number in checkpoint name {name!r}.") from error


def restore_weights(model, path):
    """Loads `path` into `model`, building the optimizer first so its state is restored too."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    model.load_weights(str(path))


def _is_finite(variable):
    value = np.asarray(variable.numpy())
    if not np.issubdtype(value.dtype, np.floating) and value.dtype.kind != "V":
        return True
    return bool(np.isfinite(value.astype(np.float32)).all())

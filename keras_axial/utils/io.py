"""File writing that never leaves a half-written file behind."""

import contextlib
import os
import pathlib
import shutil
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Opens a temporary file next to `path` and renames it onto `path` on success.

    If the body raises, the temporary file is removed and `path` is left as it was (absent or
    with its previous content), so readers never see a partial file.

    Args:
        path: destination file (str or `os.PathLike`). Its folder must exist.
        mode: `"wb"` (default) or `"w"` (text, UTF-8).

    Example:
        >>> with atomic_write("metrics.json", "w") as f:
        ...     json.dump(results, f)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write supports mode 'wb' or 'w'. Received: mode={mode!r}")
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write {str(path)!r}: its folder {str(path.parent)!r} does not exist."
        )
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_directory(path):
    """Builds a directory under a temporary name and renames it onto `path` on success.

    Yields the temporary directory (a `pathlib.Path`) to fill. On success an existing `path` is
    replaced; on failure the temporary directory is deleted and `path` is untouched.
    """
    path = pathlib.Path(path)
    parent = path.parent if str(path.parent) else pathlib.Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(
            f"Cannot create {str(path)!r}: its folder {str(parent)!r} does not exist."
        )
    temporary = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        yield temporary
        if path.exists():
            backup = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.rmdir(backup)
            os.replace(path, backup)
            os.replace(temporary, path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise

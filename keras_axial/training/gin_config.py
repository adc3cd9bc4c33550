"""Parsing the experiment's gin files and bindings with errors that name the culprit."""

import logging
import os
import pathlib

import gin

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


class GinConfigError(ValueError):
    """A gin file or binding is wrong (unknown configurable or parameter, bad syntax, ...)."""


def parse_gin(gin_files, gin_bindings=()):
    """Clears gin, then parses `gin_files` and `gin_bindings` (in that order).

    `include` lines are resolved relative to the folder holding the `gin/` tree of each file
    (so `include 'gin/models/axial_deeplab_l.gin'` works from any folder, also when the
    package is installed elsewhere than the checkout), to the folder of the file, to the
    current folder and to the repository root.

    Args:
        gin_files: paths of gin files.
        gin_bindings: extra `"configurable.parameter = value"` lines, applied last.

    Returns:
        The resolved configuration text (`gin.config_str()`): the experiment's fingerprint.

    Raises:
        FileNotFoundError: a gin file does not exist.
        GinConfigError: a binding or a file line is invalid; the message names it.
    """
    import keras_axial.gin_bindings  # noqa: F401  (registers every builder)

    gin.clear_config()
    gin_files = [str(f) for f in gin_files or ()]
    if not gin_files:
        raise GinConfigError("No --gin_file given. Pass an experiment, e.g. gin/experiments/*.gin")
    for path in gin_files:
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"--gin_file={path!r} does not exist. Experiments live in "
                f"{REPOSITORY_ROOT / 'gin' / 'experiments'}."
            )
    for search_path in _search_paths(gin_files):
        gin.add_config_file_search_path(search_path)
    # gin first tries each include relative to the current folder and logs an error when it
    # is not there, even though a search path then resolves it: those lines are noise.
    noise = _DropMessages("Path not found: ")
    logging.getLogger().addFilter(noise)
    try:
        for path in gin_files:
            try:
                gin.parse_config_file(path)
            except (ValueError, KeyError, TypeError, SyntaxError, IOError) as error:
                raise GinConfigError(f"Invalid gin file {path!r}: {error}") from error
    finally:
        logging.getLogger().removeFilter(noise)
    for binding in gin_bindings or ():
        try:
            gin.parse_config(binding)
        except (ValueError, KeyError, TypeError, SyntaxError) as error:
            raise GinConfigError(
                f"Invalid --gin_bindings={binding!r}: {error}. Check the configurable and "
                "parameter names against the builders registered in keras_axial/gin_bindings.py."
            ) from error
    return gin.config_str()


def _search_paths(gin_files):
    """Folders `include` lines are looked up in, the likeliest first, without duplicates."""
    paths = []
    for path in gin_files:
        path = pathlib.Path(path).resolve()
        paths += [parent.parent for parent in path.parents if parent.name == "gin"]
        paths.append(path.parent)
    paths += [pathlib.Path.cwd(), REPOSITORY_ROOT]
    unique = []
    for path in paths:
        if str(path) not in unique and path.is_dir():
            unique.append(str(path))
    return unique


class _DropMessages(logging.Filter):
    def __init__(self, prefix):
        super().__init__()
        self.prefix = prefix

    def filter(self, record):
        return not str(record.msg).startswith(self.prefix)

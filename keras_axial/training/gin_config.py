"""Parsing the experiment's gin files and bindings with errors that name the culprit."""

import os
import pathlib

import gin

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


class GinConfigError(ValueError):
    """A gin file or binding is wrong (unknown configurable or parameter, bad syntax, ...)."""


def parse_gin(gin_files, gin_bindings=()):
    """Clears gin, then parses `gin_files` and `gin_bindings` (in that order).

    `include` lines are resolved relative to the current folder, to the repository root (so
    `include 'gin/models/axial_deeplab_l.gin'` works from anywhere) and to the folder of the
    file that includes them.

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
    search_paths = {os.getcwd(), str(REPOSITORY_ROOT)}
    search_paths.update(str(pathlib.Path(path).resolve().parent) for path in gin_files)
    for search_path in sorted(search_paths):
        gin.add_config_file_search_path(search_path)
    for path in gin_files:
        try:
            gin.parse_config_file(path)
        except (ValueError, KeyError, TypeError, SyntaxError, IOError) as error:
            raise GinConfigError(f"Invalid gin file {path!r}: {error}") from error
    for binding in gin_bindings or ():
        try:
            gin.parse_config(binding)
        except (ValueError, KeyError, TypeError, SyntaxError) as error:
            raise GinConfigError(
                f"Invalid --gin_bindings={binding!r}: {error}. Check the configurable and "
                "parameter names against the builders registered in keras_axial/gin_bindings.py."
            ) from error
    return gin.config_str()

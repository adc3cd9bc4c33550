"""absl-flags plumbing shared by the `python -m keras_axial.data.*` entry points.

Each entry point defines its flags on a fresh `FlagValues` (not the global `FLAGS`), so the
converters can be imported together as a library and their `main(argv)` called in-process.
"""

import sys

from absl import flags


def parse_flags(argv, define_flags, usage):
    """Defines flags with `define_flags(flag_values)` and parses `argv` (default `sys.argv`).

    `--help` prints `usage` and the flags and exits 0; a bad or missing flag prints the problem
    and exits 2.
    """
    argv = list(sys.argv if argv is None else argv)
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    if any(arg in ("-h", "--help", "-help", "--helpfull") for arg in argv[1:]):
        print(usage.strip() + "\n\nFlags:" + flag_values.get_help(include_special_flags=False))
        raise SystemExit(0)
    try:
        flag_values(argv)
        flag_values.validate_all_flags()
    except flags.Error as error:
        print(f"{argv[0]}: {error}\nRun with --help for the list of flags.", file=sys.stderr)
        raise SystemExit(2) from None
    return flag_values

"""What the three command lines share: error reporting and exit status."""

import sys

from absl import app


def run_main(argv, run, report):
    """Runs `run()`; prints `report(result)` and returns its status, or prints a bad-input
    error (argument or file named in the message) and returns 2.

    Args:
        argv: the command line left after flag parsing (only the program name is expected).
        run: builds the result from the parsed flags.
        report: `report(result) -> (text, exit_status)`.
    """
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        result = run()
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text, status = report(result)
    print(text)
    return status

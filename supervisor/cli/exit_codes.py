"""The exit codes of the command line's commands."""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_FAILED = 1
# A bad definition, event or workflow file, or a bad argument: argparse's own code.
EXIT_USAGE = 2
# The workflow runner was interrupted (Ctrl-C): 128 + SIGINT, as a shell reports it.
EXIT_INTERRUPTED = 130

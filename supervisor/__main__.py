"""``python -m supervisor``: the command line, and the entry point of Batch job containers."""

from __future__ import annotations

import sys

from supervisor.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m supervisor"))

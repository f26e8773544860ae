"""Options that several commands share, worded once."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_function_option", "add_storage_root_option", "positive_int"]


def add_function_option(parser: argparse.ArgumentParser) -> None:
    """``--function NAME``: the function to take from a file that defines several."""
    parser.add_argument(
        "--function",
        metavar="NAME",
        help="the function to take from a file that defines several (SCAR's FDL format: "
        "functions: {aws: [{lambda: ...}]}); the only one by default",
    )


def add_storage_root_option(parser: argparse.ArgumentParser) -> None:
    """``--storage-root``: the folder that holds one subfolder per bucket."""
    parser.add_argument(
        "--storage-root",
        type=Path,
        default=Path(os.environ.get("SUPERVISOR_STORAGE_ROOT") or "storage"),
        help="folder with one subfolder per bucket (default: ./storage)",
    )


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value

"""``validate``: check a function definition, or each function of an FDL file
(``supervisor.checks``); ``workflow validate`` ends here too."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from supervisor.cli.exit_codes import EXIT_FAILED, EXIT_OK
from supervisor.cli.options import add_function_option

__all__ = ["add_parser", "validate"]


def add_parser(commands: Any) -> None:
    """Add ``validate`` to the command line's subcommands."""
    parser = commands.add_parser(
        "validate",
        help="check a function definition and print OK or what is wrong",
        description=(
            "Check a function definition, or each function of a SCAR FDL file: the keys "
            "(an unknown one is named with the closest valid key), the values, the paths "
            "(bucket/folder) and that init_script exists.  Prints OK per function, or every "
            "problem found; exits 1 when there is one."
        ),
    )
    parser.add_argument("config", type=Path, metavar="PATH", help="the function definition")
    add_function_option(parser)
    parser.set_defaults(command="validate", handler=validate)


def validate(args: argparse.Namespace) -> int:
    """Print each function's report (OK, or its problems); exit 1 when one has a problem."""
    from supervisor import checks

    if args.command == "workflow validate":
        reports = checks.check_workflow(args.workflow)
    else:
        reports = checks.check_file(args.config, args.function)
    for report in reports:
        print("\n".join(report.lines()), file=sys.stdout if report.ok else sys.stderr)
    return EXIT_OK if all(report.ok for report in reports) else EXIT_FAILED

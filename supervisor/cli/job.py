"""``job``: run a delegated event as an AWS Batch job or an OSCAR service runs it; and, with
no command and ``AWS_LAMBDA_RUNTIME_API`` set, serve a Lambda container image's invocations."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from supervisor.cli.exit_codes import EXIT_USAGE

__all__ = ["add_parser", "run_job", "serve_lambda_image"]


def add_parser(commands: Any) -> None:
    """Add ``job`` to the command line's subcommands."""
    job = commands.add_parser(
        "job",
        help="run a delegated event as an AWS Batch job (default when EVENT is set)",
        description=(
            "Run an event as an AWS Batch job or an OSCAR service does: the event from EVENT, "
            "then EVENT_URI, then stdin; the definition from --config, /oscar/config "
            "(SUPERVISOR_OSCAR_DIR) or FUNCTION_CONFIG/FDL; exit with the script's exit code. "
            "In an OSCAR service the script's output goes to stdout and the logs to stderr."
        ),
    )
    job.add_argument("--config", type=Path, help="the function definition (YAML or JSON)")
    job.set_defaults(command="job", handler=run_job)


def run_job(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    """Run the event as a Batch job; the exit code is the script's."""
    from batch_entrypoint.job import run_job as run_batch_job

    return run_batch_job(os.environ, stdin or sys.stdin, config_path=args.config)


def serve_lambda_image() -> int:
    """Serve the Lambda Runtime API's invocations with the Lambda handler."""
    from supervisor import lambda_image
    from supervisor.errors import SupervisorError

    try:
        return lambda_image.serve(os.environ)
    except SupervisorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

"""The command line: ``python -m supervisor [run | event | validate | workflow | layer | tune
| job]``, also installed as ``serverless-supervisor``.

One module per command, each with ``add_parser`` and the function the command runs:
``run`` sends one event through the whole pipeline on this machine (the local storage
provider, a folder per bucket, and the local Batch backend; ``supervisor.report`` words what
it did); ``event`` prints a sample event for it (``supervisor.sample_events``); ``validate``
checks a function definition, or each function of an FDL file (``supervisor.checks``);
``workflow run`` and ``workflow replay`` run a whole workflow of functions linked by bucket
folders on this machine (``supervisor.workflow``), ``workflow validate`` checks one; ``layer
publish`` publishes the Lambda Layer (``supervisor.publish``); ``tune`` measures a function at
Lambda's memory sizes and recommends its size and execution mode (``supervisor.tune``).
Local runs refuse unknown keys; the deployed entry points only warn of them.  ``job`` (the
default when ``EVENT`` or ``EVENT_URI`` is set, or an event is piped on standard input) is
what an AWS Batch job container, and an OSCAR service, runs.  With
``AWS_LAMBDA_RUNTIME_API`` set and no command, the process is a Lambda function's container
image: it serves the Runtime API's invocations with the Lambda handler
(``supervisor.lambda_image``); that wins over ``EVENT``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from supervisor import __version__
from supervisor.cli import event, job, layer, run, tune, validate, workflow
from supervisor.cli.exit_codes import EXIT_USAGE

__all__ = ["main"]

_DESCRIPTION = """\
Run a user's file-processing script for an event: stage the input in, run the script
under a timeout watchdog, upload the outputs that match the output filters, or hand the
work to AWS Batch.  In AWS Lambda use the handler handlers.lambda_handler.handler, or, in
a container image, run `python -m supervisor` (it serves the Lambda Runtime API when
AWS_LAMBDA_RUNTIME_API is set); in an AWS Batch job run `python -m supervisor` with the
event in EVENT.
"""


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the command line; ``prog`` is the name it was started by (the console script's
    name, from ``sys.argv[0]``, by default)."""
    name = prog or _program()
    args = _parser(name).parse_args(argv)
    if args.command is None:
        if os.environ.get("AWS_LAMBDA_RUNTIME_API", "").strip():
            return job.serve_lambda_image()
        if os.environ.get("EVENT", "").strip() or os.environ.get("EVENT_URI", "").strip():
            return job.run_job(args)
        piped = _piped_event(sys.stdin)
        if piped is not None:
            return job.run_job(args, io.StringIO(piped))
        _parser(name).print_help(sys.stderr)
        return EXIT_USAGE
    result: int = args.handler(args)
    return result


def _program() -> str:
    """The command's name as a person typed it: the console script (``serverless-supervisor``)
    or the binary (``supervisor``)."""
    started = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if not started or started in ("__main__.py", "-c"):
        return "python -m supervisor"
    return started


def _piped_event(stdin: TextIO | None) -> str | None:
    """The event piped on standard input (``echo $EVENT | supervisor``, and OSCAR's
    synchronous calls, which pass the request body on stdin only), or None."""
    if stdin is None or stdin.closed or stdin.isatty():
        return None
    text = stdin.read()
    return text if text.strip() else None


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(command=None, config=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    run.add_parser(commands, prog)
    event.add_parser(commands, prog)
    validate.add_parser(commands)
    workflow.add_parser(commands)
    layer.add_parser(commands)
    tune.add_parser(commands, prog)
    job.add_parser(commands)
    return parser

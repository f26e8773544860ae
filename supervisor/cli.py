"""The command line: ``python -m supervisor [run | validate | job]``.

``run`` sends one event through the whole pipeline on this machine: the local storage
provider (a folder per bucket) and the local Batch backend.  ``validate`` checks a
function definition.  ``job`` (the default when ``EVENT`` or ``EVENT_URI`` is set) is
what an AWS Batch job container runs.  With ``AWS_LAMBDA_RUNTIME_API`` set and no command,
the process is a Lambda function's container image: it serves the Runtime API's invocations
with the Lambda handler (``supervisor.lambda_image``); that wins over ``EVENT``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supervisor import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_DESCRIPTION = """\
Run a user's file-processing script for an event: stage the input in, run the script
under a timeout watchdog, upload the outputs that match the output filters, or hand the
work to AWS Batch.  In AWS Lambda use the handler handlers.lambda_handler.handler, or, in
a container image, run `python -m supervisor` (it serves the Lambda Runtime API when
AWS_LAMBDA_RUNTIME_API is set); in an AWS Batch job run `python -m supervisor` with the
event in EVENT.
"""

_RUN_EPILOG = """\
The event is a JSON file: an S3 notification (bucket/key are looked up under
--storage-root/BUCKET/KEY), an API Gateway request or any other JSON.  A job handed to
Batch runs here as `python -m supervisor` in a subprocess with the environment a Batch
job gets; `run` waits for it and reports its exit code and log.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        if os.environ.get("AWS_LAMBDA_RUNTIME_API", "").strip():
            return _lambda_image()
        if os.environ.get("EVENT", "").strip() or os.environ.get("EVENT_URI", "").strip():
            return _job(args)
        _parser().print_help(sys.stderr)
        return EXIT_USAGE
    result: int = args.handler(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m supervisor",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(command=None, config=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run one event through the whole pipeline on this machine",
        description="Run one event through the whole pipeline on local storage.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", type=Path, help="the function definition (YAML or JSON)")
    run.add_argument(
        "--event", required=True, help="the event: a JSON file, or - to read it from stdin"
    )
    run.add_argument(
        "--storage-root",
        type=Path,
        default=Path(os.environ.get("SUPERVISOR_STORAGE_ROOT") or "storage"),
        help="folder with one subfolder per bucket (default: ./storage)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        help="seconds the invocation may take, like a Lambda function's timeout (default: none)",
    )
    run.add_argument(
        "--mode",
        choices=("lambda", "batch", "lambda-batch"),
        help="override the definition's execution_mode",
    )
    run.add_argument(
        "--work-dir",
        type=Path,
        help="where invocation folders and local Batch job logs go (default: a temporary folder)",
    )
    run.add_argument("--log-level", help="override the definition's log_level")
    run.set_defaults(command="run", handler=_run)

    validate = commands.add_parser(
        "validate",
        help="check a function definition and print OK or what is wrong",
        description="Check a function definition; exit non-zero when it is invalid.",
    )
    validate.add_argument("config", type=Path, metavar="PATH", help="the function definition")
    validate.set_defaults(command="validate", handler=_validate)

    job = commands.add_parser(
        "job",
        help="run a delegated event as an AWS Batch job (default when EVENT is set)",
        description=(
            "Run a delegated event as an AWS Batch job: the event from EVENT, EVENT_URI or "
            "stdin, the definition from FUNCTION_CONFIG/FDL or --config; exit with the "
            "script's exit code."
        ),
    )
    job.add_argument("--config", type=Path, help="the function definition (YAML or JSON)")
    job.set_defaults(command="job", handler=_job)
    return parser


def _validate(args: argparse.Namespace) -> int:
    from supervisor.config import load_config
    from supervisor.errors import ConfigError

    try:
        config = load_config({}, args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    print(f"OK: function {config.name}, execution_mode {config.execution_mode}")
    return EXIT_OK


def _lambda_image() -> int:
    from supervisor import lambda_image
    from supervisor.errors import SupervisorError

    try:
        return lambda_image.serve(os.environ)
    except SupervisorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _job(args: argparse.Namespace) -> int:
    from batch_entrypoint.job import run_job

    return run_job(os.environ, sys.stdin, config_path=args.config)


def _run(args: argparse.Namespace) -> int:
    from supervisor import logs
    from supervisor.config import load_config
    from supervisor.context import InvocationContext
    from supervisor.delegation import LocalBatchBackend, definition_environment
    from supervisor.errors import ConfigError, SupervisorError
    from supervisor.runtime import build_supervisor, read_script

    environ = dict(os.environ)
    for name, value in (("EXECUTION_MODE", args.mode), ("LOG_LEVEL", args.log_level)):
        if value:
            environ[name] = value
    secrets = logs.secrets_from_environ(environ)
    try:
        config = load_config(environ, args.config)
    except ConfigError as exc:
        logs.configure_cli("INFO", secrets=secrets)
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    logs.configure_cli(config.log_level, secrets=(*secrets, *config.storage_providers.secrets()))
    storage_root = args.storage_root.resolve()
    work_root = (args.work_dir or Path(tempfile.mkdtemp(prefix="supervisor-"))).resolve()
    try:
        event_text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
    except OSError as exc:
        print(f"cannot read the event {args.event}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        backend = LocalBatchBackend(
            definition_environment(
                config.source_text,
                script=read_script(config, environ),
                storage_root=storage_root,
            ),
            log_dir=work_root / "batch-jobs",
        )
        supervisor = build_supervisor(
            config,
            platform="local",
            environ=environ,
            work_root=work_root,
            storage_root=storage_root,
            backend=backend,
        )
        supervisor.prepare()
        context = InvocationContext.local(config.name, timeout=args.timeout)
        outcome = supervisor.invoke(event_text, context)
    except SupervisorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    jobs = [_wait(backend, job_id) for job_id in outcome.job_ids]
    report: dict[str, Any] = {
        "request_id": outcome.request_id,
        "status": outcome.status,
        "records": [
            {
                "key": record.record.key or record.record.file_name,
                "status": record.status,
                "exit_code": record.exit_code,
                "uploaded": list(record.uploaded),
                "job_id": record.job_id,
                "reason": record.reason,
            }
            for record in outcome.records
        ],
        "output": outcome.output.decode("utf-8", errors="replace"),
        "jobs": jobs,
        "storage_root": str(storage_root),
    }
    print(json.dumps(report, indent=2))
    failed = outcome.status == "failed" or any(job["exit_code"] != 0 for job in jobs)
    return EXIT_FAILED if failed else EXIT_OK


def _wait(backend: Any, job_id: str) -> dict[str, Any]:
    exit_code = backend.wait(job_id)
    log_path = backend.jobs[job_id].log_path
    return {"job_id": job_id, "exit_code": exit_code, "log": str(log_path)}

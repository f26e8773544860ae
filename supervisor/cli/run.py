"""``run``: send one event through the whole pipeline on this machine, on the local storage
provider (a folder per bucket) and the local Batch backend, and print what it did
(``supervisor.report``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor import workspace
from supervisor.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from supervisor.cli.options import add_function_option, add_storage_root_option

if TYPE_CHECKING:
    from supervisor import report
    from supervisor.bootstrap import Definition
    from supervisor.config import FunctionConfig
    from supervisor.context import InvocationContext
    from supervisor.errors import SupervisorError

__all__ = ["add_parser", "run"]

_EPILOG = """\
The event is a JSON file (or - for standard input): an S3 notification (bucket/key are
looked up under --storage-root/BUCKET/KEY), an API Gateway request or any other JSON;
`{prog} event` prints one.  A job handed to Batch runs here as `python -m supervisor`
in a subprocess with the environment a Batch job gets; `run` waits for it.

It prints what ran where, what was uploaded and the response a caller would get (its
status and the first lines of its body); --json prints that as a JSON object instead.
Logs go to standard error.  Exit code: 0 when the event was processed (and its Batch jobs
exited 0), 1 when it failed, 2 for a bad definition or event file, 128+N when stopped by
signal N.  Nothing is left in the temporary folder; --work-dir keeps the Batch jobs' logs.

example:
  {prog} event s3 --bucket uploads --key in/photo.jpg > event.json
  {prog} run --config function.yaml --event event.json
"""


def add_parser(commands: Any, prog: str) -> None:
    """Add ``run`` to the command line's subcommands."""
    parser = commands.add_parser(
        "run",
        help="run one event through the whole pipeline on this machine",
        description="Run one event through the whole pipeline on local storage.",
        epilog=_EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="the function definition (YAML or JSON)")
    add_function_option(parser)
    parser.add_argument(
        "--event", required=True, help="the event: a JSON file, or - to read it from stdin"
    )
    add_storage_root_option(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds the invocation may take, like a Lambda function's timeout (default: none)",
    )
    parser.add_argument(
        "--mode",
        choices=("lambda", "batch", "lambda-batch"),
        help="override the definition's execution_mode",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="where invocation folders and local Batch job logs go, kept after the run "
        "(default: a temporary folder, removed)",
    )
    _add_output_options(parser)
    parser.set_defaults(command="run", handler=run)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """How much is printed and logged: --json, and -q, -v or --log-level."""
    parser.add_argument("--json", action="store_true", help="print the report as JSON, for tools")
    levels = parser.add_mutually_exclusive_group()
    levels.add_argument(
        "-q", "--quiet", action="store_true", help="log errors only; print the last line only"
    )
    levels.add_argument("-v", "--verbose", action="store_true", help="log DEBUG lines")
    levels.add_argument("--log-level", help="override the definition's log_level")


def run(args: argparse.Namespace) -> int:
    """``run``, stopped cleanly by SIGTERM or SIGINT: the script's process group killed, the
    local Batch jobs stopped, the invocation folders removed (the whole temporary work
    folder when ``--work-dir`` was not given), exit code ``128 + signal``."""
    from supervisor import signals

    own_work = args.work_dir is None
    work_root = (args.work_dir or Path(tempfile.mkdtemp(prefix="supervisor-"))).resolve()
    backends: list[Any] = []
    code = EXIT_FAILED
    try:
        with signals.stopping() as stop:
            try:
                code = _run_event(args, work_root, backends, keep_logs=not own_work)
            finally:
                if stop.stopped:
                    for backend in backends:
                        backend.stop()
        if stop.stopped:
            print(
                f"stopped by {stop.name}: the running script was killed and its work folder "
                "removed",
                file=sys.stderr,
            )
            return stop.exit_code
        return code
    finally:
        if own_work:
            workspace.remove_tree(work_root)


def _run_event(
    args: argparse.Namespace, work_root: Path, backends: list[Any], *, keep_logs: bool
) -> int:
    """Run the event, print its report and return the exit code.  The local Batch jobs' logs
    are read into the report; their files are named there when ``keep_logs``."""
    from supervisor.environment import local_environ

    environ = local_environ(os.environ, sys.executable)
    level = "DEBUG" if args.verbose else "ERROR" if args.quiet else args.log_level
    for name, value in (("EXECUTION_MODE", args.mode), ("LOG_LEVEL", level)):
        if value:
            environ[name] = value
    definition = _load_definition(args, environ)
    if definition is None:
        return EXIT_USAGE
    storage_root = args.storage_root.resolve()
    event_text = _read_event(args.event)
    if event_text is None:
        return EXIT_USAGE
    done = _invoke(
        definition,
        environ,
        event_text,
        _LocalRun(storage_root, work_root, backends, keep_logs),
        timeout=args.timeout,
    )
    if args.json:
        print(json.dumps(done.to_json(), indent=2))
    elif args.quiet:
        print(done.last_line())
    else:
        print("\n".join(done.lines()))
    return EXIT_FAILED if done.failed else EXIT_OK


@dataclass(frozen=True)
class _LocalRun:
    """Where a local run keeps its things: the buckets, the work folder, the local Batch
    backends started (stopped when a signal ends the run), and whether the Batch jobs' log
    files are kept."""

    storage_root: Path
    work_root: Path
    backends: list[Any]
    keep_logs: bool


def _load_definition(args: argparse.Namespace, environ: dict[str, str]) -> Definition | None:
    """The function definition, strictly checked, with the logging it asks for configured;
    None (the problem printed) when it is wrong."""
    from supervisor import bootstrap, logs
    from supervisor.errors import ConfigError

    try:
        definition = bootstrap.load(environ, path=args.config, function=args.function, strict=True)
    except ConfigError as exc:
        logs.configure_cli("INFO", secrets=logs.secrets_from_environ(environ))
        print(exc, file=sys.stderr)
        return None
    logs.configure_cli(definition.config.log_level, secrets=definition.secrets)
    return definition


def _read_event(source: str) -> str | None:
    """The event's text from the file ``source`` (``-``: standard input); None (the problem
    printed) when it cannot be read."""
    try:
        return sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        print(f"cannot read the event {source}: {exc.strerror}", file=sys.stderr)
    except UnicodeDecodeError as exc:
        print(f"cannot read the event {source}: not UTF-8 text ({exc.reason})", file=sys.stderr)
    return None


def _invoke(
    definition: Definition,
    environ: dict[str, str],
    event_text: str,
    local_run: _LocalRun,
    *,
    timeout: float | None,
) -> report.Run:
    """Invoke the function with the event, wait for the Batch jobs it started, and say what
    happened: the outcome, or the error and the response a caller would get."""
    from supervisor import bootstrap, report
    from supervisor.context import InvocationContext
    from supervisor.errors import SupervisorError

    config = definition.config
    context = InvocationContext.local(config.name, timeout=timeout)
    synchronous = _is_api_request(event_text)
    backend = None
    outcome = None
    try:
        backend = _local_backend(config, environ, local_run)
        supervisor = bootstrap.start(
            definition,
            environ,
            platform="local",
            work_root=local_run.work_root,
            storage_root=local_run.storage_root,
            backend=backend,
        )
        outcome = supervisor.invoke(event_text, context)
    except SupervisorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status, response = _failure(exc, synchronous, context)
    else:
        status = outcome.status
        response = report.response(outcome, synchronous, context)
    return report.Run(
        function=config.name,
        mode=config.execution_mode,
        storage_root=local_run.storage_root,
        request_id=context.request_id if outcome is None else outcome.request_id,
        status=status,
        response=response,
        outcome=outcome,
        jobs=[] if outcome is None else _wait_all(backend, outcome.job_ids, local_run.keep_logs),
    )


def _failure(
    exc: SupervisorError, synchronous: bool, context: InvocationContext
) -> tuple[str, dict[str, Any]]:
    """The status and the response of an invocation that raised: a bad event is rejected
    (400); any other error fails it, as a 500 to a caller who waits, else as Lambda's
    function error."""
    from supervisor import report, responses
    from supervisor.errors import EventError

    if isinstance(exc, EventError):
        return "rejected", responses.error(400, f"Bad event: {exc}", context)
    if synchronous:
        return "failed", responses.error(500, str(exc), context)
    return "failed", report.function_error(str(exc))


def _local_backend(config: FunctionConfig, environ: dict[str, str], local_run: _LocalRun) -> Any:
    """The local Batch backend that runs what the function hands to Batch, recorded in
    ``local_run.backends`` so that a stop signal stops its jobs."""
    from supervisor.local.batch import LocalBatchBackend, definition_environment
    from supervisor.wiring import read_script

    backend = LocalBatchBackend(
        definition_environment(
            config.source_text,
            script=read_script(config, environ),
            storage_root=local_run.storage_root,
        ),
        log_dir=local_run.work_root / "batch-jobs",
    )
    local_run.backends.append(backend)
    return backend


def _is_api_request(event_text: str) -> bool:
    """Whether the event is an API request, whose caller waits for the response."""
    from supervisor.events import is_api_request

    try:
        return bool(is_api_request(json.loads(event_text)))
    except (ValueError, RecursionError):
        return False


def _wait_all(backend: Any, job_ids: Sequence[str], keep_log: bool) -> list[report.Job]:
    """Wait for each local Batch job; its exit code and the tail of its log."""
    from supervisor.report import Job, read_tail

    jobs = []
    for job_id in job_ids:
        exit_code = backend.wait(job_id)
        log_path = backend.jobs[job_id].log_path
        jobs.append(Job(job_id, exit_code, log_path if keep_log else None, read_tail(log_path)))
    return jobs

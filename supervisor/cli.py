"""The command line: ``python -m supervisor [run | event | validate | workflow | job]``,
also installed as ``serverless-supervisor``.

``run`` sends one event through the whole pipeline on this machine: the local storage
provider (a folder per bucket) and the local Batch backend; ``event`` prints a sample event
for it (``supervisor.sample_events``); ``supervisor.report`` words what ``run`` did.
``validate`` checks a function definition, or each function of an FDL file
(``supervisor.checks``).  ``workflow run`` and ``workflow replay`` run a whole workflow of
functions linked by bucket folders on this machine (``supervisor.workflow``); ``workflow
validate`` checks one.  Local runs refuse unknown keys; the deployed entry points only warn
of them.  ``job`` (the default when ``EVENT`` or ``EVENT_URI`` is set, or an event is piped
on standard input) is what an AWS Batch job container, and an OSCAR service, runs.  With
``AWS_LAMBDA_RUNTIME_API`` set and no command, the process is a Lambda function's container
image: it serves the Runtime API's invocations with the Lambda handler
(``supervisor.lambda_image``); that wins over ``EVENT``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from supervisor import __version__, workspace

if TYPE_CHECKING:
    from supervisor import report

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_DESCRIPTION = """\
Run a user's file-processing script for an event: stage the input in, run the script
under a timeout watchdog, upload the outputs that match the output filters, or hand the
work to AWS Batch.  In AWS Lambda use the handler handlers.lambda_handler.handler, or, in
a container image, run `python -m supervisor` (it serves the Lambda Runtime API when
AWS_LAMBDA_RUNTIME_API is set); in an AWS Batch job run `python -m supervisor` with the
event in EVENT.
"""

_RUN_EPILOG = """\
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

_EVENT_EPILOG = """\
Object events (s3, minio, sqs, sns, eventbridge) announce --key in --bucket; sqs and sns
wrap the S3 notification as a queue or topic subscribed to the bucket delivers it.  The
HTTP kinds (api: API Gateway REST API, api-v2: HTTP API, url: a function URL) carry the
request --method, --path, --query and --body.  Identifiers are made up; the time is now.

examples:
  {prog} event s3 --bucket uploads --key "in/my photo.jpg" \\
      | {prog} run --config function.yaml --event -
  {prog} event api-v2 --body-file request.json --query lang=en > event.json
"""


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the command line; ``prog`` is the name it was started by (the console script's
    name, from ``sys.argv[0]``, by default)."""
    name = prog or _program()
    args = _parser(name).parse_args(argv)
    if args.command is None:
        if os.environ.get("AWS_LAMBDA_RUNTIME_API", "").strip():
            return _lambda_image()
        if os.environ.get("EVENT", "").strip() or os.environ.get("EVENT_URI", "").strip():
            return _job(args)
        piped = _piped_event(sys.stdin)
        if piped is not None:
            return _job(args, io.StringIO(piped))
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

    _run_parser(commands, prog)
    _event_parser(commands, prog)

    validate = commands.add_parser(
        "validate",
        help="check a function definition and print OK or what is wrong",
        description=(
            "Check a function definition, or each function of a SCAR FDL file: the keys "
            "(an unknown one is named with the closest valid key), the values, the paths "
            "(bucket/folder) and that init_script exists.  Prints OK per function, or every "
            "problem found; exits 1 when there is one."
        ),
    )
    validate.add_argument("config", type=Path, metavar="PATH", help="the function definition")
    _function_option(validate)
    validate.set_defaults(command="validate", handler=_validate)

    _workflow_parser(commands)
    _layer_parser(commands)

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
    job.set_defaults(command="job", handler=_job)
    return parser


def _layer_parser(commands: Any) -> None:
    from supervisor import publish

    layer = commands.add_parser(
        "layer",
        help="publish the Lambda Layer and print its ARNs",
        description="The Lambda Layer: build its zips and publish them as layer versions.",
    )
    actions = layer.add_subparsers(title="actions", metavar="ACTION", required=True)
    publish_parser = actions.add_parser(
        "publish",
        help="publish the layer zips to AWS regions; print and write the ARNs",
        description=(
            "Publish one layer per Python and architecture to every region given (building the "
            "zips first from a clone, unless --zip-dir has them), grant the permissions asked "
            "for, print the table of layer version ARNs and write it as JSON."
        ),
    )
    publish.configure_parser(publish_parser)
    publish_parser.set_defaults(command="layer publish", handler=_layer_publish)


def _layer_publish(args: argparse.Namespace) -> int:
    from supervisor import publish

    return publish.run(args)


def _run_parser(commands: Any, prog: str) -> None:
    run = commands.add_parser(
        "run",
        help="run one event through the whole pipeline on this machine",
        description="Run one event through the whole pipeline on local storage.",
        epilog=_RUN_EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", type=Path, help="the function definition (YAML or JSON)")
    _function_option(run)
    run.add_argument(
        "--event", required=True, help="the event: a JSON file, or - to read it from stdin"
    )
    _storage_root_option(run)
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
        help="where invocation folders and local Batch job logs go, kept after the run "
        "(default: a temporary folder, removed)",
    )
    run.add_argument("--json", action="store_true", help="print the report as JSON, for tools")
    levels = run.add_mutually_exclusive_group()
    levels.add_argument(
        "-q", "--quiet", action="store_true", help="log errors only; print the last line only"
    )
    levels.add_argument("-v", "--verbose", action="store_true", help="log DEBUG lines")
    levels.add_argument("--log-level", help="override the definition's log_level")
    run.set_defaults(command="run", handler=_run)


def _event_parser(commands: Any, prog: str) -> None:
    from supervisor.sample_events import KINDS, Sample

    defaults = Sample()
    event = commands.add_parser(
        "event",
        help="print a sample event (S3, MinIO, SQS, SNS, EventBridge, API, function URL)",
        description="Print a sample event, shaped as AWS or MinIO sends it, for `run --event`.",
        epilog=_EVENT_EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    event.add_argument("kind", choices=KINDS, metavar="KIND", help=f"one of: {', '.join(KINDS)}")
    event.add_argument(
        "--bucket", default=defaults.bucket, help=f"the bucket (default: {defaults.bucket})"
    )
    event.add_argument(
        "--key",
        default=defaults.key,
        help=f"the object's key, as stored, spaces and all (default: {defaults.key})",
    )
    event.add_argument(
        "--size",
        type=_size,
        help="the object's size in bytes (default: the size of --storage-root/BUCKET/KEY "
        f"when it is there, else {defaults.size})",
    )
    _storage_root_option(event)
    event.add_argument(
        "--region", default=defaults.region, help=f"the AWS region (default: {defaults.region})"
    )
    event.add_argument(
        "--method", default=defaults.method, help=f"the HTTP method (default: {defaults.method})"
    )
    event.add_argument(
        "--path", default=defaults.path, help=f"the request path (default: {defaults.path})"
    )
    event.add_argument(
        "--query",
        action="append",
        default=[],
        type=_query,
        metavar="NAME=VALUE",
        help="a query string parameter (the script sees it as CONT_VAR_NAME); repeat for more",
    )
    body = event.add_mutually_exclusive_group()
    body.add_argument("--body", help="the request body, as text")
    body.add_argument(
        "--body-file", type=Path, help="the request body: this file (base64 when it is not text)"
    )
    event.set_defaults(command="event", handler=_event)


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more bytes, got {value}")
    return value


def _query(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _event(args: argparse.Namespace) -> int:
    from supervisor.sample_events import Sample, generate

    if not args.bucket or "/" in args.bucket:
        print(f"error: --bucket {args.bucket!r} is not a bucket name", file=sys.stderr)
        return EXIT_USAGE
    if not args.key or args.key.endswith("/"):
        what = "a folder (it ends in /)" if args.key else "empty"
        print(f"error: --key {args.key!r} is {what}: name an object", file=sys.stderr)
        return EXIT_USAGE
    if args.body_file is not None:
        try:
            body = args.body_file.read_bytes()
        except OSError as exc:
            print(f"error: cannot read {args.body_file}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    else:
        body = (args.body or "").encode("utf-8", errors="surrogateescape")
    size = args.size
    if size is None:
        stored = args.storage_root / args.bucket / args.key
        try:
            size = stored.stat().st_size if stored.is_file() else Sample.size
        except (OSError, ValueError):
            size = Sample.size
    sample = Sample(
        bucket=args.bucket,
        key=args.key,
        size=size,
        region=args.region,
        method=args.method.upper(),
        path=args.path if args.path.startswith("/") else f"/{args.path}",
        query=dict(args.query),
        body=body,
    )
    print(json.dumps(generate(args.kind, sample), indent=2))
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from supervisor import checks

    if args.command == "workflow validate":
        reports = checks.check_workflow(args.workflow)
    else:
        reports = checks.check_file(args.config, args.function)
    for report in reports:
        print("\n".join(report.lines()), file=sys.stdout if report.ok else sys.stderr)
    return EXIT_OK if all(report.ok for report in reports) else EXIT_FAILED


def _lambda_image() -> int:
    from supervisor import lambda_image
    from supervisor.errors import SupervisorError

    try:
        return lambda_image.serve(os.environ)
    except SupervisorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _job(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    from batch_entrypoint.job import run_job

    return run_job(os.environ, stdin or sys.stdin, config_path=args.config)


def _run(args: argparse.Namespace) -> int:
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
    from supervisor import bootstrap, logs, report, responses
    from supervisor.context import InvocationContext
    from supervisor.delegation import LocalBatchBackend, definition_environment
    from supervisor.environment import local_host
    from supervisor.errors import ConfigError, EventError, SupervisorError
    from supervisor.wiring import read_script

    environ = local_host(os.environ, sys.executable)
    level = "DEBUG" if args.verbose else "ERROR" if args.quiet else args.log_level
    for name, value in (("EXECUTION_MODE", args.mode), ("LOG_LEVEL", level)):
        if value:
            environ[name] = value
    try:
        definition = bootstrap.load(environ, path=args.config, function=args.function, strict=True)
    except ConfigError as exc:
        logs.configure_cli("INFO", secrets=logs.secrets_from_environ(environ))
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    config = definition.config
    logs.configure_cli(config.log_level, secrets=definition.secrets)
    storage_root = args.storage_root.resolve()
    try:
        event_text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
    except OSError as exc:
        print(f"cannot read the event {args.event}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as exc:
        print(f"cannot read the event {args.event}: not UTF-8 text ({exc.reason})", file=sys.stderr)
        return EXIT_USAGE
    context = InvocationContext.local(config.name, timeout=args.timeout)
    synchronous = _is_api_request(event_text)
    backend = None
    outcome = None
    try:
        backend = LocalBatchBackend(
            definition_environment(
                config.source_text,
                script=read_script(config, environ),
                storage_root=storage_root,
            ),
            log_dir=work_root / "batch-jobs",
        )
        backends.append(backend)
        supervisor = bootstrap.start(
            definition,
            environ,
            platform="local",
            work_root=work_root,
            storage_root=storage_root,
            backend=backend,
        )
        outcome = supervisor.invoke(event_text, context)
    except EventError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status, response = "rejected", responses.error(400, f"Bad event: {exc}", context)
    except SupervisorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = "failed"
        if synchronous:
            response = responses.error(500, str(exc), context)
        else:
            response = report.function_error(str(exc))
    else:
        status = outcome.status
        response = report.response(outcome, synchronous, context)
    jobs = (
        [] if outcome is None else [_wait(backend, job_id, keep_logs) for job_id in outcome.job_ids]
    )
    done = report.Run(
        function=config.name,
        mode=config.execution_mode,
        storage_root=storage_root,
        request_id=context.request_id if outcome is None else outcome.request_id,
        status=status,
        response=response,
        outcome=outcome,
        jobs=jobs,
    )
    if args.json:
        print(json.dumps(done.to_json(), indent=2))
    elif args.quiet:
        print(done.last_line())
    else:
        print("\n".join(done.lines()))
    return EXIT_FAILED if done.failed else EXIT_OK


def _is_api_request(event_text: str) -> bool:
    """Whether the event is an API request, whose caller waits for the response."""
    from supervisor.events import is_api_request

    try:
        return bool(is_api_request(json.loads(event_text)))
    except (ValueError, RecursionError):
        return False


def _wait(backend: Any, job_id: str, keep_log: bool) -> report.Job:
    from supervisor.report import Job, read_tail

    exit_code = backend.wait(job_id)
    log_path = backend.jobs[job_id].log_path
    return Job(job_id, exit_code, log_path if keep_log else None, read_tail(log_path))


_WORKFLOW_EPILOG = """\
The workflow file is the multi-function format of deployment tools:
  functions:
    aws:
    - lambda: {name, execution_mode, memory, timeout, init_script, input, output, ...}
      batch: {vcpus, memory, enable_gpu, compute_resources: {max_v_cpus}}
Buckets are folders under --storage-root.  Each file uploaded (or written by a function)
into a function's input folder invokes that function with the S3 event a bucket
notification carries.  lambda and lambda-batch functions run here under a deadline of
their timeout, at most --lambda-concurrency at once; what they hand to Batch, and batch
functions, run as `python -m supervisor` jobs, at most max_v_cpus / vcpus of a function at
once (--batch-jobs overrides), the others pending.  Scripts run as plain processes on this
machine (container images are not pulled).  The run ends when no work is left; it writes
timeline.json, timeline.png, workflow.log and one log per invocation into --work-dir.
Exit code: 0 when every invocation succeeded, 1 when one failed, 2 for a bad workflow.
"""

# The paper's experiment: 1 video at 0, 1 at 1 min, 3 at 5 min, 5 at 10 min.
PAPER_SCHEDULE = "0:1,60:1,300:3,600:5"


def _workflow_parser(commands: Any) -> None:
    workflow = commands.add_parser(
        "workflow",
        help="run a workflow of functions linked by bucket folders on this machine",
        description="Run a workflow of functions linked by bucket folders on this machine.",
    )
    actions = workflow.add_subparsers(title="actions", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="upload files and run every invocation they lead to",
        description="Upload files into the workflow and run every invocation they lead to.",
        epilog=_WORKFLOW_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _workflow_arguments(run)
    run.set_defaults(command="workflow run", handler=_workflow_run, schedule=None)
    replay = actions.add_parser(
        "replay",
        help="upload files on a schedule (the paper's experiment) and report the figures",
        description=(
            "Upload files on a schedule, as the paper's experiment did (1 video at 0, 1 at "
            "1 min, 3 at 5 min, 5 at 10 min), with minutes shrunk by --time-scale, and "
            "report what ran where and for how long."
        ),
        epilog=_WORKFLOW_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _workflow_arguments(replay)
    replay.add_argument(
        "--schedule",
        default=PAPER_SCHEDULE,
        help=(
            "AT:COUNT,... uploads COUNT files AT seconds of the experiment, taking the "
            f"--upload files in turn (default: {PAPER_SCHEDULE})"
        ),
    )
    replay.add_argument(
        "--time-scale",
        type=float,
        default=60.0,
        help="divide the schedule's times by this (default 60: a minute becomes a second)",
    )
    replay.set_defaults(command="workflow replay", handler=_workflow_run)
    validate = actions.add_parser(
        "validate",
        help="check every function of a workflow and print OK or what is wrong",
        description=(
            "Check each function of a workflow as `validate` does, then the workflow as a "
            "whole (unique names, an input folder each, no loop); exit 1 on any problem."
        ),
    )
    validate.add_argument("workflow", type=Path, metavar="WORKFLOW.yaml", help="the workflow file")
    validate.set_defaults(command="workflow validate", handler=_validate)


def _function_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--function",
        metavar="NAME",
        help="the function to take from a file that defines several (SCAR's FDL format: "
        "functions: {aws: [{lambda: ...}]}); the only one by default",
    )


def _storage_root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage-root",
        type=Path,
        default=Path(os.environ.get("SUPERVISOR_STORAGE_ROOT") or "storage"),
        help="folder with one subfolder per bucket (default: ./storage)",
    )


def _workflow_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", type=Path, metavar="WORKFLOW.yaml", help="the workflow file")
    parser.add_argument(
        "--upload", nargs="+", type=Path, required=True, metavar="FILE", help="files to upload"
    )
    parser.add_argument(
        "--to",
        metavar="BUCKET/PATH",
        help="where to upload (default: the first input folder no function writes to)",
    )
    _storage_root_option(parser)
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="where logs, Batch job logs and the timeline go (default: a new temporary folder)",
    )
    parser.add_argument(
        "--lambda-concurrency",
        type=_positive,
        default=4,
        metavar="N",
        help="Lambda invocations running at once, as an account's concurrency (default: 4)",
    )
    parser.add_argument(
        "--batch-jobs",
        type=_positive,
        metavar="N",
        help="Batch jobs of one function running at once (default: the workflow's "
        "max_v_cpus / vcpus, else 2)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw timeline.png")
    parser.add_argument("--log-level", default="INFO", help="level of workflow.log (default INFO)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _workflow_run(args: argparse.Namespace) -> int:
    from supervisor import logs, signals
    from supervisor.errors import ConfigError, SupervisorError
    from supervisor.workflow import (
        WorkflowRunner,
        load_workflow,
        schedule_uploads,
        workflow_secrets,
    )

    try:
        workflow = load_workflow(args.workflow)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    missing = [str(path) for path in args.upload if not path.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    target = args.to or workflow.entry.path
    files = [path.resolve() for path in args.upload]
    try:
        if args.schedule is None:
            uploads = schedule_uploads("0:1", 1.0, files, target, repeat=False)
        else:
            uploads = schedule_uploads(args.schedule, args.time_scale, files, target)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not workflow.triggered_by(uploads[0].bucket, uploads[0].key):
        print(f"warning: no function of the workflow reads {target}", file=sys.stderr)
    work_dir = (args.work_dir or Path(tempfile.mkdtemp(prefix="workflow-"))).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    storage_root = args.storage_root.resolve()
    secrets = workflow_secrets(workflow, os.environ)
    with (work_dir / "workflow.log").open("a", encoding="utf-8") as log:
        logs.configure_cli(args.log_level, secrets=secrets, stream=log)
        count = len(workflow.functions)
        print(f"workflow {args.workflow}: {count} function(s), work folder {work_dir}")
        runner = WorkflowRunner(
            workflow,
            storage_root=storage_root,
            work_dir=work_dir,
            lambda_concurrency=args.lambda_concurrency,
            batch_slots=args.batch_jobs,
            draw=not args.no_chart,
        )
        result = None
        with signals.stopping() as stop:
            try:
                result = runner.run(uploads)
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_USAGE
            except SupervisorError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_FAILED
    if stop.stopped:
        print(
            f"stopped by {stop.name}: the running scripts were killed and their work folders "
            f"removed; logs in {work_dir}",
            file=sys.stderr,
        )
        return stop.exit_code
    assert result is not None
    print(f"\ntimeline: {result.timeline_json}")
    if result.timeline_png is not None:
        print(f"chart:    {result.timeline_png}")
    print(f"logs:     {work_dir / 'logs'} (Lambda), {work_dir / 'batch-jobs'} (Batch),")
    print(f"          {result.log}")
    print(f"buckets:  {storage_root}")
    print(
        f"{len(result.timeline.invocations)} invocation(s) in {result.duration:.1f} s, "
        f"{result.failed} failed, {result.unfinished} unfinished"
    )
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED

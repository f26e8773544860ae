"""``workflow run``, ``workflow replay`` and ``workflow validate``: a whole workflow of
functions linked by bucket folders, on this machine (``supervisor.workflow``)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.cli import validate
from supervisor.cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from supervisor.cli.options import add_storage_root_option, positive_int

if TYPE_CHECKING:
    from supervisor.workflow import RunResult, Upload, Workflow, WorkflowRunner

__all__ = ["PAPER_SCHEDULE", "add_parser", "run_workflow"]

_EPILOG = """\
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


def add_parser(commands: Any) -> None:
    """Add ``workflow`` and its actions ``run``, ``replay`` and ``validate``."""
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
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(run)
    run.set_defaults(command="workflow run", handler=run_workflow, schedule=None)
    _add_replay_parser(actions)
    check = actions.add_parser(
        "validate",
        help="check every function of a workflow and print OK or what is wrong",
        description=(
            "Check each function of a workflow as `validate` does, then the workflow as a "
            "whole (unique names, an input folder each, no loop); exit 1 on any problem."
        ),
    )
    check.add_argument("workflow", type=Path, metavar="WORKFLOW.yaml", help="the workflow file")
    check.set_defaults(command="workflow validate", handler=validate.validate)


def _add_replay_parser(actions: Any) -> None:
    replay = actions.add_parser(
        "replay",
        help="upload files on a schedule (the paper's experiment) and report the figures",
        description=(
            "Upload files on a schedule, as the paper's experiment did (1 video at 0, 1 at "
            "1 min, 3 at 5 min, 5 at 10 min), with minutes shrunk by --time-scale, and "
            "report what ran where and for how long."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(replay)
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
    replay.set_defaults(command="workflow replay", handler=run_workflow)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", type=Path, metavar="WORKFLOW.yaml", help="the workflow file")
    parser.add_argument(
        "--upload", nargs="+", type=Path, required=True, metavar="FILE", help="files to upload"
    )
    parser.add_argument(
        "--to",
        metavar="BUCKET/PATH",
        help="where to upload (default: the first input folder no function writes to)",
    )
    add_storage_root_option(parser)
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="where logs, Batch job logs and the timeline go (default: a new temporary folder)",
    )
    parser.add_argument(
        "--lambda-concurrency",
        type=positive_int,
        default=4,
        metavar="N",
        help="Lambda invocations running at once, as an account's concurrency (default: 4)",
    )
    parser.add_argument(
        "--batch-jobs",
        type=positive_int,
        metavar="N",
        help="Batch jobs of one function running at once (default: the workflow's "
        "max_v_cpus / vcpus, else 2)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw timeline.png")
    parser.add_argument("--log-level", default="INFO", help="level of workflow.log (default INFO)")


def run_workflow(args: argparse.Namespace) -> int:
    """``workflow run`` and ``workflow replay``: upload the files (on the schedule) and run
    every invocation they lead to; stopped cleanly by SIGTERM or SIGINT."""
    from supervisor import logs, signals
    from supervisor.errors import ConfigError
    from supervisor.workflow import workflow_secrets

    try:
        workflow, uploads = _plan(args)
    except (ConfigError, _Unusable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    work_dir = (args.work_dir or Path(tempfile.mkdtemp(prefix="workflow-"))).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    storage_root = args.storage_root.resolve()
    secrets = workflow_secrets(workflow, os.environ)
    outcome: RunResult | int = EXIT_FAILED
    with (work_dir / "workflow.log").open("a", encoding="utf-8") as log:
        logs.configure_cli(args.log_level, secrets=secrets, stream=log)
        count = len(workflow.functions)
        print(f"workflow {args.workflow}: {count} function(s), work folder {work_dir}")
        runner = _runner(args, workflow, work_dir, storage_root)
        with signals.stopping() as stop:
            outcome = _run(runner, uploads)
    if stop.stopped:
        print(
            f"stopped by {stop.name}: the running scripts were killed and their work folders "
            f"removed; logs in {work_dir}",
            file=sys.stderr,
        )
        return stop.exit_code
    if isinstance(outcome, int):
        return outcome
    return _report(outcome, work_dir, storage_root)


class _Unusable(Exception):
    """The uploads asked for cannot be made: a missing file or a bad schedule."""


def _plan(args: argparse.Namespace) -> tuple[Workflow, list[Upload]]:
    """The workflow and its uploads; raises ``ConfigError`` for a bad workflow file and
    ``_Unusable`` for missing files or a bad schedule.  Warns when no function reads the
    folder the files go to."""
    from supervisor.workflow import load_workflow, schedule_uploads

    workflow = load_workflow(args.workflow)
    missing = [str(path) for path in args.upload if not path.is_file()]
    if missing:
        raise _Unusable(f"no such file: {', '.join(missing)}")
    target = args.to or workflow.entry.path
    files = [path.resolve() for path in args.upload]
    try:
        if args.schedule is None:
            uploads = schedule_uploads("0:1", 1.0, files, target, repeat=False)
        else:
            uploads = schedule_uploads(args.schedule, args.time_scale, files, target)
    except ValueError as exc:
        raise _Unusable(str(exc)) from exc
    if not workflow.triggered_by(uploads[0].bucket, uploads[0].key):
        print(f"warning: no function of the workflow reads {target}", file=sys.stderr)
    return workflow, uploads


def _runner(
    args: argparse.Namespace, workflow: Workflow, work_dir: Path, storage_root: Path
) -> WorkflowRunner:
    from supervisor.workflow import WorkflowRunner

    return WorkflowRunner(
        workflow,
        storage_root=storage_root,
        work_dir=work_dir,
        lambda_concurrency=args.lambda_concurrency,
        batch_slots=args.batch_jobs,
        draw=not args.no_chart,
    )


def _run(runner: WorkflowRunner, uploads: list[Upload]) -> RunResult | int:
    """The run's result, or the exit code of the error that ended it."""
    from supervisor.errors import ConfigError, SupervisorError

    try:
        return runner.run(uploads)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SupervisorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _report(result: RunResult, work_dir: Path, storage_root: Path) -> int:
    """Print where the timeline, the logs and the buckets are, and the figures; the exit
    code."""
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

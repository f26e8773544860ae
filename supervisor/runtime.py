"""The runtime: wires the components for one execution mode and runs an invocation.

This is the only place that decides.  A record whose object lies outside the function's
``input`` locations is refused first, before any download or hand-over (unless
``allow_any_input``): an event of refused records only is an ``EventError``, and among
others a refused record fails while they run.  Per record of the event it stages the input in,
runs the script under the watchdog, and uploads the filtered outputs; in ``batch`` mode
it hands the event to Batch straight away, and in ``lambda-batch`` mode it hands on a
record whose run timed out or failed, or that ran out of resources: an input too large
for the free space of the work folder (``/tmp``), known from the event's size before any
download or from ENOSPC during it, or a script killed by SIGKILL that the watchdog did
not send (the kernel's out-of-memory killer), as ``batch.delegate_on`` says.  Nothing is
uploaded from a run that timed out or was delegated.  A record's outcome holds the last
``OUTPUT_LIMIT`` bytes of the script's output at most (the whole of it is in the log).

``build_supervisor`` creates the parts (storage clients, the executor, the Batch
backend) once per process; ``Supervisor.invoke`` is called per event.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from supervisor import allocator, events, filtering, staging, workspace
from supervisor.delegation import Backend, BatchBackend, RetryPolicy, build_job
from supervisor.errors import ConfigError, DeadlineError, EventError, ExecutionError, NoSpaceError
from supervisor.escaping import escape
from supervisor.execution import (
    ExecutionResult,
    Executor,
    ProcessExecutor,
    ScriptRun,
    build_environment,
)
from supervisor.hardening import ScriptUser, resolve_user
from supervisor.sessions import Sessions
from supervisor.watchdog import Watchdog

if TYPE_CHECKING:
    from supervisor.config import DelegateReason, FunctionConfig, Platform
    from supervisor.context import InvocationContext
    from supervisor.events import ParsedEvent, Record
    from supervisor.idempotency import Idempotency

__all__ = [
    "Outcome",
    "RecordOutcome",
    "Supervisor",
    "build_supervisor",
    "read_script",
    "script_user",
]

_log = logging.getLogger(__name__)

Status = Literal["succeeded", "failed", "delegated"]
# Seconds kept between the end of a Batch submission (retries included) and the Lambda deadline.
SUBMIT_MARGIN = 0.2
# The most of a script's output (its last bytes) that a record's outcome holds: a Lambda
# response carries at most 6 MB, the body in base64 (4 MiB take 5.3), and each line of the
# output is in the log anyway.
OUTPUT_LIMIT = 4 * 1024 * 1024
_SIGKILL = int(signal.SIGKILL)
# Where the supervisor runs a job handed to it, never deciding what runs from the event.
_JOB_PLATFORMS = ("batch", "oscar")


@dataclass(frozen=True)
class RecordOutcome:
    """What became of one record: done here, failed here, or handed to Batch."""

    status: Status
    record: Record
    output: bytes = b""
    exit_code: int | None = None
    timed_out: bool = False
    uploaded: tuple[str, ...] = ()
    job_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Outcome:
    """What became of an invocation's records; for an SQS batch, its messages' ids and the
    messages that could not be read (id, reason), which count as failed."""

    request_id: str
    records: tuple[RecordOutcome, ...] = field(default_factory=tuple)
    message_ids: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()

    @property
    def status(self) -> Status:
        statuses = {record.status for record in self.records}
        if "failed" in statuses or self.rejected:
            return "failed"
        return "delegated" if "delegated" in statuses else "succeeded"

    @property
    def failed_messages(self) -> tuple[str, ...]:
        """The ids of the SQS messages with a record that failed, or that were rejected."""
        failed = {message for message, _ in self.rejected}
        failed.update(
            record.record.message_id
            for record in self.records
            if record.status == "failed" and record.record.message_id is not None
        )
        return tuple(message for message in self.message_ids if message in failed)

    @property
    def output(self) -> bytes:
        return b"".join(record.output for record in self.records)

    @property
    def job_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.job_id for r in self.records if r.job_id is not None))

    @property
    def uploaded(self) -> tuple[str, ...]:
        return tuple(uri for record in self.records for uri in record.uploaded)

    @property
    def exit_code(self) -> int:
        """The first failing record's exit code (1 when it has none), else 0."""
        for record in self.records:
            if record.status == "failed":
                code = record.exit_code
                if code is None or code == 0:
                    return 1
                return code if code > 0 else 128 - code
        return 1 if self.rejected else 0

    def summary(self) -> str:
        """A one-paragraph account for a person: what ran where and what came out, a line
        per record (a key's or a reason's control characters escaped)."""
        lines = []
        for record in self.records:
            what = escape(record.record.key or record.record.file_name or "event")
            reason = escape(record.reason)
            if record.status == "delegated":
                lines.append(f"{what}: delegated to Batch job {record.job_id} ({reason})")
            elif record.status == "failed":
                lines.append(f"{what}: failed ({reason})")
            else:
                lines.append(f"{what}: done, {len(record.uploaded)} file(s) uploaded")
        lines += [f"SQS message {message}: rejected ({why})" for message, why in self.rejected]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Run:
    """What runs for each record: the script (base64) and its arguments, or the image with
    a command line of the caller's."""

    script: str | None
    image_command: tuple[str, ...] | None
    args: tuple[str, ...]


class Supervisor:
    """One function's runtime, built once per process and reused by every invocation."""

    def __init__(
        self,
        config: FunctionConfig,
        *,
        platform: Platform,
        providers: staging.ProviderSet,
        executor: Executor,
        backend: Backend,
        script: str | None,
        host_environ: Mapping[str, str],
        work_root: Path,
        clock: Callable[[], float] = time.monotonic,
        free_space: staging.FreeSpace = staging.disk_free,
        idempotency: Idempotency | None = None,
        script_user: ScriptUser | None = None,
    ) -> None:
        self.config = config
        self.platform = platform
        self.providers = providers
        self._executor = executor
        self.backend = backend
        self.script = script
        self._host = dict(host_environ)
        self._work_root = work_root
        self._clock = clock
        self._free_space = free_space
        self.idempotency = idempotency
        self._instance_ip: str | None = None
        # Who runs the script, when not the supervisor's own user.
        self.script_user = script_user

    @property
    def mode(self) -> str:
        """Where the work happens: a Batch job always runs the script itself."""
        return "lambda" if self.platform in _JOB_PLATFORMS else self.config.execution_mode

    def prepare(self) -> None:
        """Create clients and folders now, so that nothing of that is paid at the deadline."""
        self._work_root.mkdir(parents=True, exist_ok=True)
        if self.script_user is not None:
            _check_reachable(self._work_root, self.script_user)
        if self.mode in ("batch", "lambda-batch"):
            self.backend.prepare()
            if self.idempotency is not None:
                self.idempotency.prepare()
        if self.mode != "batch":
            # Transfers run here, in threads: keep what they free from staying in an arena
            # per thread.
            allocator.limit_arenas()
            self.providers.prepare()

    def invoke(self, raw_event: Any, context: InvocationContext) -> Outcome:
        parsed = events.parse(raw_event, opaque_body=self.platform == "oscar")
        script = self._script_for(parsed)
        image_command = self._image_command_for(parsed)
        _log.info(
            "Invocation %s: %d record(s) from a %s event, mode %s",
            context.request_id,
            len(parsed.records),
            parsed.kind,
            self.mode,
        )
        messages, rejected = parsed.message_ids, parsed.rejected
        if not parsed.records:
            _log.info("Invocation %s: nothing to process", context.request_id)
            return Outcome(context.request_id, message_ids=messages, rejected=rejected)
        refusals = self._refusals(parsed)
        if all(refusals):
            raise EventError("; ".join(dict.fromkeys(refusals)) + _ALLOW_ANY_INPUT)
        if self.mode == "batch":
            return Outcome(
                context.request_id,
                tuple(self._delegate_all(parsed, refusals, context)),
                message_ids=messages,
                rejected=rejected,
            )
        if script is None and image_command is None:
            raise ConfigError(
                f"function {self.config.name}: no script to run: set init_script, or pass "
                "SCRIPT to the job"
            )
        run = _Run(script, image_command, () if image_command else parsed.cmd_args or ())
        return Outcome(
            context.request_id,
            tuple(
                _refused(record, refusal)
                if refusal
                else self._process(parsed, record, run, context)
                for record, refusal in zip(parsed.records, refusals, strict=True)
            ),
            message_ids=messages,
            rejected=rejected,
        )

    def _refusals(self, parsed: ParsedEvent) -> list[str]:
        """Per record, why it is refused ('' when it is not): an object outside the inputs,
        unless ``allow_any_input``.  Judged before anything is downloaded or handed on."""
        if self.config.allow_any_input or not self.config.input:
            return [""] * len(parsed.records)
        refusals = [
            staging.outside_inputs(record, self.config.input) or "" for record in parsed.records
        ]
        for refusal in refusals:
            if refusal:
                _log.warning("Refused: %s", refusal)
        return refusals

    def _delegate_all(
        self, parsed: ParsedEvent, refusals: list[str], context: InvocationContext
    ) -> list[RecordOutcome]:
        """``batch`` mode: the whole event to one job; when some records are refused, each of
        the others alone to a job of its own."""
        if not any(refusals):
            job_id = self._delegate(parsed.raw, parsed.script, context)
            return [
                RecordOutcome("delegated", record, job_id=job_id, reason="batch mode")
                for record in parsed.records
            ]
        outcomes = []
        for index, (record, refusal) in enumerate(zip(parsed.records, refusals, strict=True)):
            if refusal:
                outcomes.append(_refused(record, refusal))
                continue
            event = events.event_for(parsed, record)
            job_id = self._delegate(event, parsed.script, context, record=index)
            outcomes.append(RecordOutcome("delegated", record, job_id=job_id, reason="batch mode"))
        return outcomes

    def _script_for(self, parsed: ParsedEvent) -> str | None:
        """The caller's script (the top level of a direct invocation) where the definition
        allows it, else the job's ``SCRIPT`` or the definition's.

        A job (Batch, OSCAR) never takes a script from its event: the supervisor that
        handed the event on passed the caller's script as ``SCRIPT`` when it was allowed.
        """
        if parsed.script is None:
            return self.script
        if self.platform in _JOB_PLATFORMS:
            _log.warning(
                "The event carries a script: ignored, a job runs SCRIPT or the definition's"
            )
            return self.script
        self._check_caller_may_choose("a script")
        return parsed.script

    def _image_command_for(self, parsed: ParsedEvent) -> tuple[str, ...] | None:
        """``cmd_args`` run the container image with that command line when the function
        runs its script in an image here (a script in the event wins, as it replaces the
        definition's); elsewhere they are the script's arguments."""
        if parsed.cmd_args is None or parsed.script is not None:
            return None
        if not self._executor.runs_image or self.platform in _JOB_PLATFORMS:
            return None
        self._check_caller_may_choose("the command line of the image (cmd_args)")
        return parsed.cmd_args

    def _check_caller_may_choose(self, what: str) -> None:
        if not self.config.allow_event_script:
            raise EventError(
                f"function {self.config.name} does not accept {what} in the event "
                "(allow_event_script is false in its definition)"
            )

    def _process(
        self,
        parsed: ParsedEvent,
        record: Record,
        run: _Run,
        context: InvocationContext,
    ) -> RecordOutcome:
        watchdog = Watchdog(context.deadline, self.config.timeout_threshold, clock=self._clock)
        work = Path(tempfile.mkdtemp(prefix="invocation-", dir=self._work_root))
        try:
            input_dir, output_dir = work / "input", work / "output"
            input_dir.mkdir()
            output_dir.mkdir()
            try:
                input_file = self._stage_in(record, input_dir, watchdog)
            except DeadlineError as exc:
                return self._give_up(parsed, record, context, "timeout", str(exc))
            except NoSpaceError as exc:
                _log.warning("Record %s: %s", record.key or record.source, exc)
                return self._give_up(parsed, record, context, "resources", str(exc))
            script_path = work / "script.sh"
            if run.script is not None:
                script_path.write_bytes(base64.b64decode(run.script))
            scratch = work / "tmp"
            scratch.mkdir()
            event_json = json.dumps(events.record_event(parsed, record))
            event_file = work / "event.json"
            event_file.write_text(event_json, encoding="utf-8", errors="surrogatepass")
            home = None
            if self.script_user is not None:
                home = work / "home"
                home.mkdir()
                _hand_over(work, self.script_user, (input_dir, output_dir, scratch, home))
            environment = build_environment(
                host=self._host,
                input_file=input_file,
                input_dir=input_dir,
                output_dir=output_dir,
                object_key=record.key,
                event_time=record.event_time,
                event_json=event_json,
                request_id=context.request_id,
                instance_ip=self._ip(),
                variables=self.config.container.environment.variables,
                query=record.query,
                tmp_dir=scratch,
                event_file=event_file,
                aws_credentials=self.config.container.pass_aws_credentials,
                platform=self.platform,
            )
            if home is not None:
                # The host's HOME (``/root`` in most images) is not the script user's to write.
                environment["HOME"] = str(home)
            script_run = ScriptRun(
                script_path,
                environment,
                work,
                work / "output.log",
                args=run.args,
                image_command=run.image_command,
                user=self.script_user,
            )
            try:
                result = self._executor.run(script_run, watchdog)
            except DeadlineError as exc:
                return self._give_up(parsed, record, context, "timeout", str(exc))
            return self._finish(parsed, record, result, output_dir, context)
        finally:
            workspace.remove_tree(work)

    def _stage_in(self, record: Record, input_dir: Path, watchdog: Watchdog) -> Path | None:
        if record.is_object and self.config.file_stage_in:
            _log.info("file_stage_in is set: not downloading %s/%s", record.bucket, record.key)
            return None
        if record.body is None and not record.is_object:
            return None
        return staging.download(
            record,
            self.providers,
            input_dir,
            inputs=self.config.input,
            deadline=watchdog.kill_at,
            clock=self._clock,
            free_space=self._free_space,
        )

    def _finish(
        self,
        parsed: ParsedEvent,
        record: Record,
        result: ExecutionResult,
        output_dir: Path,
        context: InvocationContext,
    ) -> RecordOutcome:
        output = result.output(OUTPUT_LIMIT)
        if result.succeeded:
            plans = filtering.plan_uploads(output_dir, self.config.output)
            uploaded = staging.upload(plans, self.providers, deadline=context.deadline)
            _log.info("Record %s done in %.2f s", record.key or record.source, result.duration)
            return RecordOutcome(
                "succeeded", record, output, result.exit_code, uploaded=tuple(uploaded)
            )
        reasons, detail = _diagnose(result, context.memory_limit_in_mb)
        _log.warning("Record %s: %s", record.key or record.source, detail)
        outcome = self._give_up(parsed, record, context, reasons, detail)
        return RecordOutcome(
            outcome.status,
            record,
            output,
            result.exit_code,
            result.timed_out,
            job_id=outcome.job_id,
            reason=outcome.reason,
        )

    def _give_up(
        self,
        parsed: ParsedEvent,
        record: Record,
        context: InvocationContext,
        reasons: DelegateReason | tuple[DelegateReason, ...],
        detail: str,
    ) -> RecordOutcome:
        """Hand the record on to Batch when the mode allows and ``delegate_on`` lists any of
        ``reasons``, else fail it."""
        reasons = (reasons,) if isinstance(reasons, str) else reasons
        timed_out = "timeout" in reasons
        if self.mode == "lambda-batch":
            if any(reason in self.config.batch.delegate_on for reason in reasons):
                job_id = self._delegate(
                    events.event_for(parsed, record),
                    parsed.script,
                    context,
                    record=_index(parsed, record),
                )
                return RecordOutcome(
                    "delegated", record, job_id=job_id, timed_out=timed_out, reason=detail
                )
            listed = " or ".join(reasons)
            detail += f" (not handed to Batch: batch.delegate_on does not list {listed})"
        return RecordOutcome("failed", record, timed_out=timed_out, reason=detail)

    def _delegate(
        self,
        event: Any,
        script: str | None,
        context: InvocationContext,
        *,
        record: int | None = None,
    ) -> str:
        """Submit the job for ``event`` (the whole event, or record number ``record`` alone),
        once per delivery when ``idempotency`` is set, finishing before the deadline."""
        deadline = None if context.deadline is None else context.deadline - SUBMIT_MARGIN

        def submit() -> str:
            job = build_job(
                self.config,
                context,
                json.dumps(event),
                script=script,
                store_event=self._store_event,
            )
            return self.backend.submit(job, deadline=deadline)

        if self.idempotency is None:
            return submit()
        return self.idempotency.once(context.request_id, record, submit, deadline=deadline)

    def _store_event(self, event_json: str) -> str:
        bucket, folder = _event_store(self.config)
        key = "/".join(part for part in (folder, f"{uuid.uuid4()}.json") if part)
        return staging.put_bytes(self.providers, bucket, key, event_json.encode(), self._work_root)

    def _ip(self) -> str:
        if self._instance_ip is None:
            try:
                self._instance_ip = socket.gethostbyname(socket.gethostname())
            except OSError:
                self._instance_ip = ""
        return self._instance_ip


_ALLOW_ANY_INPUT = " (set allow_any_input: true in the definition to accept objects from anywhere)"


def _refused(record: Record, refusal: str) -> RecordOutcome:
    return RecordOutcome("failed", record, reason=f"refused: {refusal}{_ALLOW_ANY_INPUT}")


def _diagnose(result: ExecutionResult, memory_mb: int) -> tuple[tuple[DelegateReason, ...], str]:
    """Why a run did not succeed: its ``delegate_on`` reasons and a sentence for a person.

    The watchdog kills only at the deadline (a timeout), so any other SIGKILL came from
    outside, most likely the kernel's out-of-memory killer: a lack of resources as well as
    a failure.  A shell reports a command of its own killed that way as exit code 128 + 9.
    """
    if result.timed_out:
        return ("timeout",), "the script ran past the deadline less the reserve"
    killed: tuple[DelegateReason, ...] = ("resources", "failure")
    memory = f" the function has {memory_mb} MB" if memory_mb > 0 else ""
    if result.killed_by_signal == _SIGKILL:
        return killed, f"the script was killed by SIGKILL (out of memory?{memory})"
    if result.exit_code == 128 + _SIGKILL:
        return killed, (
            f"the script exited with {result.exit_code}: a command it ran was killed by "
            f"SIGKILL (out of memory?{memory})"
        )
    return ("failure",), f"the script exited with {result.exit_code}"


def _check_reachable(folder: Path, user: ScriptUser) -> None:
    """Raise ``ConfigError`` unless ``user`` may enter ``folder`` and every folder above it:
    the script's folders are made in it, and the script opens them by their whole path."""
    for path in (folder.resolve(), *folder.resolve().parents):
        mode = path.stat()
        if mode.st_uid == user.uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid == user.gid:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            raise ConfigError(
                f"the script runs as user {user} (script_user), which cannot enter {path} "
                f"(mode {stat.S_IMODE(mode.st_mode):04o}) to reach the work folder {folder}: "
                "set SUPERVISOR_WORK_DIR to a folder it can reach, or script_user to root"
            )


def _hand_over(work: Path, user: ScriptUser, folders: tuple[Path, ...]) -> None:
    """Let ``user`` run the script in ``work``: enter it (not list it), read the script and
    its event (``EVENT_FILE``), and
    own ``folders`` (input, output, TMPDIR, HOME) with all that is in them (the staged input).

    The rest of ``work`` (the script's log) stays the supervisor's; links are not followed.
    """
    try:
        work.chmod(0o711)
        for readable in (work / "script.sh", work / "event.json"):
            if readable.exists():
                readable.chmod(0o644)
        for folder in folders:
            os.lchown(folder, user.uid, user.gid)
            for root, dirs, files in os.walk(folder):
                for name in (*dirs, *files):
                    os.lchown(os.path.join(root, name), user.uid, user.gid)
    except OSError as exc:
        raise ExecutionError(
            f"cannot give the work folder {work} to the script's user {user}: {exc}"
        ) from exc


def _index(parsed: ParsedEvent, record: Record) -> int:
    """The position of ``record`` in the event (by identity: two records may be equal)."""
    return next(i for i, candidate in enumerate(parsed.records) if candidate is record)


def _event_store(config: FunctionConfig) -> tuple[str, str]:
    """Where events too large for a job request go: ``batch.event_store``, else beside the data."""
    if config.batch.event_store:
        bucket, _, folder = config.batch.event_store.strip("/").partition("/")
        return bucket, folder
    for location in (*config.output, *config.input):
        if location.storage_provider in ("s3", "s3.default"):
            return location.bucket, ".supervisor-events"
    raise ConfigError(
        "the event is too large for a Batch job request and there is no S3 bucket to keep it "
        "in: set batch.event_store to bucket/folder"
    )


def build_supervisor(
    config: FunctionConfig,
    *,
    platform: Platform,
    environ: Mapping[str, str],
    work_root: Path,
    storage_root: Path | None = None,
    storage_events: Path | None = None,
    backend: Backend | None = None,
    providers: staging.ProviderSet | None = None,
    executor: Executor | None = None,
    free_space: staging.FreeSpace = staging.disk_free,
    idempotency: Idempotency | None = None,
    euid: int | None = None,
) -> Supervisor:
    """The wiring: pick the executor, the storage and the Batch backend for this host, and
    who runs the script (``script_user``; ``euid`` is this process's effective user id).

    Their AWS clients share one botocore session (``Sessions``), created when the first
    of them is.
    """
    sessions = Sessions()
    announce = None
    if storage_events is not None:
        # A job of a local workflow: its local storage announces what it writes.
        from supervisor.local.notifications import announcer

        announce = announcer(storage_events)
    if executor is None:
        container = config.container
        if platform == "lambda-zip" and (container.image or container.image_file):
            from supervisor.container import UdockerExecutor

            executor = UdockerExecutor.for_host(
                container.image,
                image_file=container.image_file,
                # No ptrace in Lambda, so no proot (P modes): fakechroot unless told.
                execmode=config.udocker.execmode or "F1",
                environ=environ,
                work_root=work_root,
            )
        else:
            executor = ProcessExecutor()
    return Supervisor(
        config,
        platform=platform,
        providers=providers
        or staging.build_providers(
            config,
            storage_root=storage_root,
            announce=announce,
            session_factory=sessions.boto3,
        ),
        executor=executor,
        backend=backend
        or BatchBackend(
            policy=RetryPolicy.for_reserve(config.timeout_threshold), session=sessions.botocore
        ),
        script=read_script(config, environ),
        host_environ=environ,
        work_root=work_root,
        free_space=free_space,
        idempotency=idempotency or _idempotency(config, platform, sessions),
        script_user=script_user(config, platform, environ, os.geteuid() if euid is None else euid),
    )


def script_user(
    config: FunctionConfig, platform: Platform, environ: Mapping[str, str], euid: int
) -> ScriptUser | None:
    """Who runs the script when not the supervisor's own user (``None``).

    Only root can run it as another user.  Then ``script_user`` says who (``root``: root
    itself); unset, ``nobody`` in a Batch job (``AWS_BATCH_JOB_ID``) and an OSCAR service,
    where other processes of the container hold the secrets as root.  A local run, and a
    job of the local Batch backend, keep the user that started them.
    """
    setting = config.script_user
    if euid != 0:
        if setting is not None:
            _log.info(
                "script_user %s has no effect: the supervisor runs as user %d, not root, "
                "and so does the script",
                setting,
                euid,
            )
        return None
    if setting is None:
        if platform == "oscar" or (platform == "batch" and environ.get("AWS_BATCH_JOB_ID")):
            setting = "nobody"
        else:
            return None
    if setting == "root":
        return None
    user = resolve_user(setting)
    if user.uid == 0:
        return None
    _log.info("Scripts run as user %s (script_user %s)", user, setting)
    return user


def _idempotency(
    config: FunctionConfig, platform: Platform, sessions: Sessions
) -> Idempotency | None:
    """DynamoDB records when the definition names a table and this is Lambda, where retries
    reuse the request id (elsewhere each run has a request id of its own)."""
    settings = config.idempotency
    if settings.table is None or platform not in ("lambda-zip", "lambda-image"):
        return None
    from supervisor.idempotency import DynamoDBIdempotency

    policy = RetryPolicy.for_reserve(config.timeout_threshold)
    return DynamoDBIdempotency(
        settings.table,
        key_prefix=config.name,
        expires_after_seconds=settings.expires_after_seconds,
        session=sessions.botocore,
        connect_timeout=policy.connect_timeout,
        read_timeout=policy.read_timeout,
    )


def read_script(config: FunctionConfig, environ: Mapping[str, str]) -> str | None:
    """The script as base64: the job's ``SCRIPT``, else the ``init_script`` file, read once."""
    if environ.get("SCRIPT", "").strip():
        script = environ["SCRIPT"].strip()
        try:
            base64.b64decode(script, validate=True)
        except ValueError as exc:  # binascii.Error, or a character outside ASCII
            raise ConfigError("SCRIPT: expected the script encoded in base64") from exc
        return script
    if config.init_script is None:
        return None
    try:
        return base64.b64encode(config.init_script.read_bytes()).decode("ascii")
    except OSError as exc:
        raise ConfigError(
            f"init_script: cannot read {str(config.init_script)!r}: {exc.strerror}"
        ) from exc

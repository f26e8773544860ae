"""The runtime: runs an invocation through the components, in one execution mode.

This is the only place that decides.  A record whose object lies outside the function's
``input`` locations is refused first, before any download or hand-over (unless
``allow_any_input``): an event of refused records only is an ``EventError``, and among
others a refused record fails while they run.  Per record of the event it stages the input
in, runs the script under the watchdog, and uploads the filtered outputs; in ``batch`` mode
it hands the event to Batch straight away, and in ``lambda-batch`` mode it hands on a
record whose run timed out or failed, or that ran out of resources: an input too large
for the free space of the work folder (``/tmp``), known from the event's size before any
download or from ENOSPC during it, or a script killed by SIGKILL that the watchdog did
not send (the kernel's out-of-memory killer), as ``batch.delegate_on`` says.  Nothing is
uploaded from a run that timed out or was delegated.  A record's outcome holds the last
``OUTPUT_LIMIT`` bytes of the script's output at most (the whole of it is in the log).

``supervisor.wiring.build_supervisor`` creates the parts (storage clients, the executor,
the Batch backend) once per process; ``Supervisor.invoke`` is called per event, with the
invocation's context and its deadline (``supervisor.deadline`` says how the reserve before
it is spent).  What runs for an event is chosen by ``supervisor.run_choice``; why a run did
not succeed, by ``supervisor.diagnosis``.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor import allocator, events, filtering, staging, workspace
from supervisor.deadline import SUBMIT_MARGIN, Deadline
from supervisor.delegation import Backend, BatchBackend, build_job
from supervisor.diagnosis import diagnose
from supervisor.environment import FROZEN, InvocationFacts, ScriptSettings, script_environment
from supervisor.errors import ConfigError, DeadlineError, EventError, NoSpaceError
from supervisor.event_store import EventStore
from supervisor.execution import ExecutionResult, Executor, ScriptRun
from supervisor.outcome import Outcome, RecordOutcome
from supervisor.run_choice import JOB_PLATFORMS, RunChoice, choose_run
from supervisor.users import check_reachable, hand_over
from supervisor.watchdog import Watchdog
from supervisor.workspace import InvocationPaths

if TYPE_CHECKING:
    from supervisor.config import DelegateReason, FunctionConfig, Platform
    from supervisor.context import InvocationContext
    from supervisor.events import ParsedEvent, Record
    from supervisor.hardening import ScriptUser
    from supervisor.idempotency import Idempotency

__all__ = [
    "Outcome",
    "RecordOutcome",
    "Supervisor",
]

logger = logging.getLogger(__name__)

# The most of a script's output (its last bytes) that a record's outcome holds: a Lambda
# response carries at most 6 MB, the body in base64 (4 MiB take 5.3), and each line of the
# output is in the log anyway.
OUTPUT_LIMIT = 4 * 1024 * 1024


class Supervisor:
    """One function's runtime, built once per process and reused by every invocation."""

    def __init__(
        self,
        config: FunctionConfig,
        *,
        platform: Platform,
        providers: staging.Stores,
        executor: Executor,
        backend: Backend,
        script: str | None,
        environ: Mapping[str, str],
        work_root: Path,
        free_space: staging.FreeSpace = staging.disk_free,
        idempotency: Idempotency | None = None,
        script_user: ScriptUser | None = None,
        event_store: EventStore | None = None,
    ) -> None:
        self.config = config
        self.platform = platform
        self.providers = providers
        self._executor = executor
        self.backend = backend
        self.script = script
        self._environ = dict(environ)
        self._work_root = work_root
        self._free_space = free_space
        self.idempotency = idempotency
        self._instance_ip: str | None = None
        # Who runs the script, when not the supervisor's own user.
        self.script_user = script_user
        # Where events too large for a job request go, for the delegation step.
        self.event_store = event_store or EventStore(config, providers, work_root)
        self._settings = ScriptSettings(
            variables=config.container.environment.variables,
            pass_aws_credentials=config.container.pass_aws_credentials,
        )

    @property
    def mode(self) -> str:
        """Where the work happens: a Batch job always runs the script itself."""
        return "lambda" if self.platform in JOB_PLATFORMS else self.config.execution_mode

    def prepare(self) -> None:
        """Create clients and folders now, so that nothing of that is paid at the deadline."""
        self._work_root.mkdir(parents=True, exist_ok=True)
        if self.script_user is not None:
            check_reachable(self._work_root, self.script_user)
        if self.mode in ("batch", "lambda-batch"):
            self.backend.prepare()
            if self.idempotency is not None:
                self.idempotency.prepare()
        if self.mode != "batch":
            # Transfers run here, in threads: keep what they free from staying in an arena
            # per thread.
            allocator.limit_arenas()
            self.providers.prepare()

    def rehearse(self) -> None:
        """Take the first submission through the Batch client without sending it, so that
        the first invocation that submits costs what a warm one does (``prepare`` first)."""
        if self.mode in ("batch", "lambda-batch") and isinstance(self.backend, BatchBackend):
            self.backend.rehearse()

    def invoke(self, raw_event: Any, context: InvocationContext) -> Outcome:
        parsed = events.parse(raw_event, opaque_body=self.platform == "oscar")
        run = choose_run(
            parsed,
            self.config,
            platform=self.platform,
            script=self.script,
            executor=self._executor,
        )
        logger.info(
            "Invocation %s: %d record(s) from a %s event, mode %s",
            context.request_id,
            len(parsed.records),
            parsed.kind,
            self.mode,
        )
        messages, rejected = parsed.message_ids, parsed.rejected
        if not parsed.records:
            logger.info("Invocation %s: nothing to process", context.request_id)
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
        if run.empty:
            raise ConfigError(
                f"function {self.config.name}: no script to run: set init_script, or pass "
                "SCRIPT to the job"
            )
        return Outcome(
            context.request_id,
            tuple(
                _refused(parsed.records[index], refusal)
                if refusal
                else self._process(parsed, index, run, context)
                for index, refusal in enumerate(refusals)
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
                logger.warning("Refused: %s", refusal)
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

    def _process(
        self, parsed: ParsedEvent, index: int, run: RunChoice, context: InvocationContext
    ) -> RecordOutcome:
        """Record number ``index`` run here: staged in, run under the watchdog, its outputs
        uploaded; or handed on or failed where that cannot be done."""
        record = parsed.records[index]
        watchdog = Watchdog(context.deadline, self.config.timeout_threshold)
        paths = InvocationPaths.create(self._work_root)
        try:
            try:
                input_file = self._stage_in(record, paths.input_dir, watchdog.kill)
            except DeadlineError as exc:
                return self._delegate_or_fail(parsed, index, context, "timeout", str(exc))
            except NoSpaceError as exc:
                logger.warning("Record %s: %s", record.key or record.source, exc)
                return self._delegate_or_fail(parsed, index, context, "resources", str(exc))
            script_run = self._script_run(parsed, record, run, paths, input_file, context)
            try:
                result = self._executor.run(script_run, watchdog)
            except DeadlineError as exc:
                return self._delegate_or_fail(parsed, index, context, "timeout", str(exc))
            return self._finish(parsed, index, result, paths.output_dir, context)
        finally:
            workspace.remove_tree(paths.work)

    def _stage_in(self, record: Record, input_dir: Path, deadline: Deadline) -> Path | None:
        if record.is_object and self.config.file_stage_in:
            logger.info("file_stage_in is set: not downloading %s/%s", record.bucket, record.key)
            return None
        if record.body is None and not record.is_object:
            return None
        return staging.download(
            record,
            self.providers,
            input_dir,
            inputs=self.config.input,
            deadline=deadline,
            free_space=self._free_space,
        )

    def _script_run(
        self,
        parsed: ParsedEvent,
        record: Record,
        run: RunChoice,
        paths: InvocationPaths,
        input_file: Path | None,
        context: InvocationContext,
    ) -> ScriptRun:
        """The run of the script for ``record``: its files written, its folders given to its
        user, its environment built."""
        if run.script is not None:
            paths.script.write_bytes(base64.b64decode(run.script))
        paths.scratch.mkdir()
        event_json = json.dumps(events.record_event(parsed, record))
        paths.event_file.write_text(event_json, encoding="utf-8", errors="surrogatepass")
        if self.script_user is not None:
            paths.home.mkdir()
            hand_over(paths, self.script_user)
        facts = InvocationFacts.for_record(
            paths,
            record,
            input_file=input_file,
            event_json=event_json,
            request_id=context.request_id,
            instance_ip=self._ip(),
        )
        environment = script_environment(
            self.platform, self._environ, facts, self._settings, frozen=FROZEN
        )
        if self.script_user is not None:
            # The host's HOME (``/root`` in most images) is not the script user's to write.
            environment["HOME"] = str(paths.home)
        return ScriptRun(
            paths.script,
            environment,
            paths.work,
            paths.log,
            args=run.args,
            image_command=run.image_command,
            user=self.script_user,
        )

    def _finish(
        self,
        parsed: ParsedEvent,
        index: int,
        result: ExecutionResult,
        output_dir: Path,
        context: InvocationContext,
    ) -> RecordOutcome:
        record = parsed.records[index]
        output = result.output(OUTPUT_LIMIT)
        if result.succeeded:
            plans = filtering.plan_uploads(output_dir, self.config.output)
            uploaded = staging.upload(plans, self.providers, deadline=context.deadline)
            logger.info("Record %s done in %.2f s", record.key or record.source, result.duration)
            return RecordOutcome(
                "succeeded", record, output, result.exit_code, uploaded=tuple(uploaded)
            )
        reasons, detail = diagnose(result, context.memory_limit_in_mb)
        logger.warning("Record %s: %s", record.key or record.source, detail)
        outcome = self._delegate_or_fail(parsed, index, context, reasons, detail)
        return replace(outcome, output=output, exit_code=result.exit_code)

    def _delegate_or_fail(
        self,
        parsed: ParsedEvent,
        index: int,
        context: InvocationContext,
        reasons: DelegateReason | tuple[DelegateReason, ...],
        detail: str,
    ) -> RecordOutcome:
        """Hand record number ``index`` on to Batch when the mode allows and ``delegate_on``
        lists any of ``reasons``, else fail it."""
        record = parsed.records[index]
        reasons = (reasons,) if isinstance(reasons, str) else reasons
        timed_out = "timeout" in reasons
        if self.mode == "lambda-batch":
            if any(reason in self.config.batch.delegate_on for reason in reasons):
                event = events.event_for(parsed, record)
                job_id = self._delegate(event, parsed.script, context, record=index)
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
        once per delivery when ``idempotency`` is set, finishing ``SUBMIT_MARGIN`` seconds
        before the deadline."""
        deadline = context.deadline.less(SUBMIT_MARGIN)

        def submit() -> str:
            job = build_job(
                self.config,
                context,
                json.dumps(event),
                script=script,
                store_event=self.event_store.put,
            )
            return self.backend.submit(job, deadline)

        if self.idempotency is None:
            return submit()
        return self.idempotency.once(context.request_id, record, submit, deadline=deadline)

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

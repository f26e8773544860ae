"""Execution: running the user's script for one invocation.

Owns the script's environment (a fresh dict built by ``build_environment`` with the policy
of ``supervisor.environment``, never the supervisor's own ``os.environ``), the process
that runs it (``/bin/sh SCRIPT`` in its own process group, under the ``Watchdog``; what it
leaves outside its group is killed by ``supervisor.reaper``), and its output (copied to a
per-invocation log file and logged a block of lines per record, by
``supervisor.script_output``).  The udocker executor (``supervisor.container``) runs its
``udocker run`` command through the same ``ProcessExecutor.run_command``.

A script that fails or times out is an ``ExecutionResult``; ``ExecutionError`` is raised
only when the script cannot be started at all.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from supervisor.deadline import LATE_DRAIN
from supervisor.environment import (
    AWS_CREDENTIAL_VARIABLES as AWS_CREDENTIAL_VARIABLES,
)
from supervisor.environment import DEFAULT_PATH as DEFAULT_PATH
from supervisor.environment import FROZEN, InvocationFacts, ScriptSettings, script_environment
from supervisor.environment import HOST_VARIABLES as HOST_VARIABLES
from supervisor.errors import ExecutionError
from supervisor.hardening import ScriptUser, protect_process
from supervisor.reaper import Reaper, ScriptWatch, process_reaper
from supervisor.script_output import OutputPump
from supervisor.watchdog import Watchdog, kill_group

if TYPE_CHECKING:
    from supervisor.config import Platform

__all__ = [
    "ExecutionResult",
    "Executor",
    "ProcessExecutor",
    "ScriptRun",
    "build_environment",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScriptRun:
    """What to run: the script, its whole environment, its working folder, its log file.

    ``args`` are the script's arguments (``"$@"``).  ``image_command``, for an executor that
    runs images, runs the image with that command line instead of the script (``scar run
    ARGS`` on a function with ``container.image``).  ``user``, when set, runs it as that
    user with no supplementary groups (the supervisor must be root).
    """

    script: Path
    environment: Mapping[str, str]
    workdir: Path
    log_path: Path
    args: tuple[str, ...] = ()
    image_command: tuple[str, ...] | None = None
    user: ScriptUser | None = None


@dataclass(frozen=True)
class ExecutionResult:
    """How a script run ended.  ``exit_code`` is negative (``-signal``) when killed by a signal,
    ``None`` when the script was never started."""

    exit_code: int | None
    timed_out: bool
    duration: float
    log_path: Path

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def killed_by_signal(self) -> int | None:
        """The number of the signal that ended the script, if one did."""
        if self.exit_code is not None and self.exit_code < 0:
            return -self.exit_code
        return None

    def output(self, limit: int | None = None) -> bytes:
        """What the script wrote to stdout and stderr: all of it, or with ``limit`` the last
        ``limit`` bytes after a line saying how much was left out."""
        try:
            with self.log_path.open("rb") as log:
                size = os.fstat(log.fileno()).st_size
                if limit is None or size <= limit:
                    return log.read()
                log.seek(size - limit)
                tail = log.read(limit)
        except FileNotFoundError:
            return b""
        note = f"[the first {size - limit} of {size} bytes of output are left out here]\n"
        return note.encode() + tail


class Executor(Protocol):
    # Whether ``ScriptRun.image_command`` means something here (a container image runs).
    runs_image: bool

    def run(self, run: ScriptRun, watchdog: Watchdog) -> ExecutionResult: ...


class ProcessExecutor:
    """Runs the script as a plain process: ``interpreter SCRIPT`` (``/bin/sh``) in a new session.

    ``join_timeout`` bounds the wait for the end of the script's output once its process
    group and what it left behind are gone (a process that left the group holds the pipe
    until the ``reaper`` kills it, later when another script run of this process overlaps
    this one); past the watchdog's kill instant the wait is ``LATE_DRAIN``, as the reserve pays
    for it.
    ``reaper`` defaults to the one of this process (``supervisor.reaper.process_reaper``).
    """

    def __init__(
        self,
        *,
        interpreter: str = "/bin/sh",
        join_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        reaper: Reaper | None = None,
    ) -> None:
        self._shell = interpreter
        self._join_timeout = join_timeout
        self._clock = clock
        self._reaper = reaper or process_reaper()

    runs_image = False

    def run(self, run: ScriptRun, watchdog: Watchdog) -> ExecutionResult:
        command = (self._shell, str(run.script), *run.args)
        return self.run_command(run, watchdog, command, run.environment)

    def run_command(
        self,
        run: ScriptRun,
        watchdog: Watchdog,
        command: Sequence[str],
        environment: Mapping[str, str],
    ) -> ExecutionResult:
        """Run ``command`` for ``run`` in ``run.workdir`` with exactly ``environment``,
        in a new session under ``watchdog``, its output going to ``run.log_path``."""
        if watchdog.expired():
            return _not_started(run)
        if run.image_command is None and not run.script.is_file():
            raise ExecutionError(f"cannot run script {run.script}: no such file")
        process, watch, pump = self._launch(run, command, environment)
        started = self._clock()
        logger.info("script %s started as process group %d", run.script, process.pid)
        # Names only: values may be secrets the function handed to its script.
        logger.debug("script %s environment: %s", run.script, " ".join(sorted(environment)))
        thread = threading.Thread(target=pump.run, name=f"script-output-{process.pid}", daemon=True)
        thread.start()
        try:
            timed_out = watchdog.supervise(process)
            duration = self._clock() - started
        finally:
            kill_group(process.pid, watchdog.grace, process=process, clock=watchdog.clock)
            self._reaper.end(watch)
            self._drain(thread, pump, process.pid, self._drain_time(watchdog))
        logger.info(
            "script %s ended: exit code %s, timed out %s, %.3f s",
            run.script,
            process.returncode,
            timed_out,
            duration,
        )
        return ExecutionResult(
            exit_code=process.returncode,
            timed_out=timed_out,
            duration=duration,
            log_path=run.log_path,
        )

    def _launch(
        self, run: ScriptRun, command: Sequence[str], environment: Mapping[str, str]
    ) -> tuple[subprocess.Popen[bytes], ScriptWatch, OutputPump]:
        """The process started and watched by the reaper, with the pump of its output into
        ``run.log_path`` (not yet reading)."""
        log_file = _open_log(run.log_path)
        read_fd, write_fd = os.pipe()
        watch = self._reaper.begin(f"script {run.script}")
        try:
            process = self._start(run, command, environment, write_fd)
        except BaseException:
            self._reaper.end(watch)
            os.close(read_fd)
            log_file.close()
            raise
        finally:
            os.close(write_fd)
        watch.track(process.pid)
        return process, watch, OutputPump(read_fd, log_file)

    def _start(
        self,
        run: ScriptRun,
        command: Sequence[str],
        environment: Mapping[str, str],
        output_fd: int,
    ) -> subprocess.Popen[bytes]:
        # Before the first script: this process's environment and memory hold the secrets.
        protect_process()
        user = run.user
        try:
            return subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=output_fd,
                stderr=subprocess.STDOUT,
                cwd=run.workdir,
                env=dict(environment),
                start_new_session=True,
                close_fds=True,
                user=None if user is None else user.uid,
                group=None if user is None else user.gid,
                extra_groups=None if user is None else [],
            )
        except (OSError, ValueError) as exc:
            raise _start_error(run, command[0], environment, exc) from exc

    def _drain_time(self, watchdog: Watchdog) -> float:
        """``join_timeout``, cut to the time left before the watchdog's kill instant: past it,
        the wait would come out of the reserve that pays for the delegation, and what the
        dead group wrote is read within moments."""
        left = watchdog.kill.remaining()
        if left is None:
            return self._join_timeout
        return min(self._join_timeout, max(left, LATE_DRAIN))

    def _drain(self, thread: threading.Thread, pump: OutputPump, pgid: int, timeout: float) -> None:
        thread.join(timeout)
        if thread.is_alive():
            logger.warning(
                "output of process group %d still open %.1f s after it ended "
                "(held by a process outside the group): no longer read",
                pgid,
                timeout,
            )
            pump.stop()
            thread.join(1.0)


def build_environment(
    *,
    environ: Mapping[str, str],
    input_file: Path | None,
    input_dir: Path,
    output_dir: Path,
    object_key: str,
    event_time: str,
    event_json: str,
    request_id: str,
    instance_ip: str,
    variables: Mapping[str, str],
    query: Mapping[str, str],
    tmp_dir: Path | None = None,
    event_file: Path | None = None,
    aws_credentials: bool = False,
    platform: Platform = "lambda-zip",
    frozen: bool = FROZEN,
) -> dict[str, str]:
    """The script's whole environment on ``platform``, as a fresh dict: the policy of
    ``supervisor.environment.script_environment`` for these facts and settings."""
    return script_environment(
        platform,
        environ,
        InvocationFacts(
            input_file=input_file,
            input_dir=input_dir,
            output_dir=output_dir,
            object_key=object_key,
            event_time=event_time,
            event_json=event_json,
            request_id=request_id,
            instance_ip=instance_ip,
            query=query,
            tmp_dir=tmp_dir,
            event_file=event_file,
        ),
        ScriptSettings(variables=variables, pass_aws_credentials=aws_credentials),
        frozen=frozen,
    )


def _not_started(run: ScriptRun) -> ExecutionResult:
    """A run with no time left: an empty log, and a timeout."""
    logger.warning("no time left before the deadline: script %s not started", run.script)
    _open_log(run.log_path).close()
    return ExecutionResult(exit_code=None, timed_out=True, duration=0.0, log_path=run.log_path)


def _start_error(
    run: ScriptRun, program: str, environment: Mapping[str, str], exc: Exception
) -> ExecutionError:
    """Why the script could not be started, with what helps to fix it."""
    if isinstance(exc, ValueError):
        return ExecutionError(f"cannot run script {run.script}: {exc}")
    if isinstance(exc, PermissionError) and run.user is not None:
        return ExecutionError(
            f"cannot run script {run.script} as user {run.user} (script_user) with "
            f"{program} in {run.workdir}: {exc}; that user must be able to enter "
            "every folder above the work folder"
        )
    if isinstance(exc, OSError) and exc.errno == errno.E2BIG:
        size = sum(len(k) + len(v) + 2 for k, v in environment.items())
        return ExecutionError(
            f"cannot run script {run.script}: its environment is too large "
            f"({len(environment)} variables, {size} bytes; one variable may "
            f"hold at most 128 KiB)"
        )
    return ExecutionError(f"cannot run script {run.script} with {program} in {run.workdir}: {exc}")


def _open_log(path: Path) -> BinaryIO:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb", buffering=0)
    except OSError as exc:
        raise ExecutionError(f"cannot create the script's log file {path}: {exc}") from exc

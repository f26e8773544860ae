"""Measuring a function at each target: its real script through the pipeline, in a cgroup.

``measure`` runs every sample input ``runs`` times at every target (a Lambda memory size, a
Batch instance), each run one invocation in a process of its own
(``supervisor.tune.runner``): started at full speed, it loads the definition and builds the
supervisor (Lambda's init phase), then moves itself into a fresh cgroup v1 with the
target's CPU share and memory limit (``supervisor.lambda_sizes``) and times the
invocation, as Lambda bills it.  The cgroup's peak memory and OOM kills are read when the
run ends::

    measurements = measure(
        Path("function.yaml"), None, [Sample.of(Path("a.mp4"))],
        [LambdaSize(128), LambdaSize(1769), InstanceSize("m5.large", 2, 8192)],
        runs=3, timeout_s=300, work_dir=Path("/tmp/tune"), progress=print,
    )

Runs go round by round (each sample at each target, then again), so that the host's drift
in speed spreads over all targets.  Each sample is copied into a private local storage,
under the function's first ``input`` location (``tune/input`` for a function without
one), and the event is an S3 notification of it; the outputs a run uploads there are
removed after it.  Everything is written under ``work_dir``, and removed at the end.

A run's status: ``oom`` when the OOM killer fired in its cgroup (the script's death or the
runner's own: a result, never an error), ``timeout`` when the watchdog ended the script,
``failed`` for another failure (the detail says which), else ``ok``.

Errors: ``CgroupUnavailableError`` (checked before any run: one cgroup made and removed),
``ConfigError`` (the definition), ``ValueError`` (no sample, no target, two samples of one
name, ``runs`` below 1).  If the caller is interrupted (KeyboardInterrupt, or SIGTERM:
``supervisor.signals.Stopped`` is raised when no handler of SIGTERM is installed), the
run's processes are killed and its cgroup removed before the exception goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import supervisor
from supervisor import sample_events, workspace
from supervisor.errors import ConfigError
from supervisor.lambda_sizes import CgroupLimiter, CgroupUsage, InstanceSize, Size
from supervisor.signals import Stopped
from supervisor.tune.model import Measurement, Run, RunStatus, Sample, Target

__all__ = ["default_script_user", "measure", "target_of"]

_MIB = 1 << 20
# The runner's own start, the definition's loading, and what follows the watchdog's kill,
# beyond the function's timeout: past that, the run is ended as timed out.
_GRACE_S = 120.0
_KILL_WAIT_S = 30.0
# Where samples go for a function without an input location.
_DEFAULT_BUCKET, _DEFAULT_FOLDER = "tune", "input"


def target_of(size: Size, host_cpus: float) -> Target:
    """The target of ``size`` on a host with ``host_cpus`` CPUs: a Batch instance for an
    ``InstanceSize``, else a Lambda memory size."""
    return Target(
        kind="batch" if isinstance(size, InstanceSize) else "lambda",
        name=size.name,
        memory_mb=size.memory_mb,
        cpu_share=size.cpu_share,
        cpus_given=min(size.cpu_share, host_cpus),
        capped=size.capped(host_cpus),
    )


def _quiet(line: str) -> None:
    """The default ``progress``: say nothing."""


def measure(
    definition: Path,
    function: str | None,
    samples: Sequence[Sample],
    targets: Sequence[Size],
    *,
    runs: int,
    timeout_s: float,
    work_dir: Path,
    progress: Callable[[str], None] = _quiet,
) -> list[Measurement]:
    """Measure the function at each target: one ``Measurement`` per target, in order.

    ``timeout_s`` is the function's timeout: the invocation's context gets it, and the
    watchdog ends the script at that less the definition's reserve.  ``progress`` gets a
    line per run.
    """
    _check_arguments(samples, targets, runs)
    probe = CgroupLimiter(targets[0]).create()
    probe.remove()
    plan = _Plan(
        definition=definition.resolve(),
        function=function,
        timeout_s=timeout_s,
        host_cpus=probe.host_cpus,
    )
    location, chosen_user = _input_location(plan)
    plan = replace(plan, script_user=default_script_user(chosen_user))
    work_dir.mkdir(parents=True, exist_ok=True)
    if plan.script_user is not None:
        _check_reachable(work_dir, plan.script_user)
    root = Path(tempfile.mkdtemp(prefix="tune-", dir=work_dir))
    try:
        root.chmod(0o755)  # a script run as another user (script_user) reaches its folders
        storage = _Storage(root / "storage", location, samples)
        runs_of: list[list[Run]] = [[] for _ in targets]
        with _stopped_by_sigterm():
            for round_ in range(1, runs + 1):
                for sample in samples:
                    for index, size in enumerate(targets):
                        run = _run(plan, size, sample, storage, root)
                        runs_of[index].append(run)
                        progress(_line(size, sample, round_, runs, run))
                        storage.clear_outputs()
        return [
            Measurement(target_of(size, plan.host_cpus), tuple(found))
            for size, found in zip(targets, runs_of, strict=True)
        ]
    finally:
        workspace.remove_tree(root)


def default_script_user(chosen: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """Who runs the script: ``chosen`` (the definition's ``script_user``, or
    ``SUPERVISOR_SCRIPT_USER``) when set; else, where tune runs as root (which it needs only
    for its cgroups, and Lambda never gives a script), the user who started it with sudo
    (``SUDO_UID``), who can read their own tools, or ``nobody``.  None: tune's own user."""
    if chosen is not None:
        return chosen
    if os.geteuid() != 0:
        return None
    uid, gid = environ.get("SUDO_UID", ""), environ.get("SUDO_GID", "")
    if uid.isdigit() and uid != "0":
        return f"{uid}:{gid}" if gid.isdigit() else uid
    return "nobody"


def _check_reachable(work_dir: Path, script_user: str) -> None:
    """Raise ``ConfigError`` unless the script's user can reach ``work_dir``."""
    from supervisor import users
    from supervisor.hardening import resolve_user

    user = resolve_user(script_user)
    if user.uid == 0:
        return
    try:
        users.check_reachable(work_dir, user)
    except ConfigError:
        raise ConfigError(
            f"the script runs as user {user} (Lambda never runs it as root), which cannot "
            f"reach the work folder {work_dir}: give a work folder every user can enter "
            "(such as one under /tmp), or choose the script's user with script_user in the "
            "definition or SUPERVISOR_SCRIPT_USER (root included)"
        ) from None


def _check_arguments(samples: Sequence[Sample], targets: Sequence[Size], runs: int) -> None:
    if not samples:
        raise ValueError("tune needs at least one sample input")
    if not targets:
        raise ValueError("tune needs at least one memory size or instance to measure at")
    if runs < 1:
        raise ValueError(f"runs per input must be 1 or more, got {runs}")
    names = [sample.name for sample in samples]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(
            f"two sample inputs have the same name ({', '.join(twice)}): rename one, as the "
            "runs and the report tell them apart by name"
        )


@dataclass(frozen=True)
class _Plan:
    """What every run shares: the function, its timeout, and the host's CPUs."""

    definition: Path
    function: str | None
    timeout_s: float
    host_cpus: float
    script_user: str | None = None

    @property
    def environment(self) -> dict[str, str]:
        """The variables each run sets over the environment: the pipeline runs here, in
        ``lambda`` mode, and the script as ``script_user`` when set."""
        environment = {"EXECUTION_MODE": "lambda"}
        if self.script_user is not None:
            environment["SUPERVISOR_SCRIPT_USER"] = self.script_user
        return environment


def _input_location(plan: _Plan) -> tuple[tuple[str, str], str | None]:
    """(bucket, folder) of the function's first input, where the samples are put, and the
    script's user the definition or the environment chooses (None: not chosen); the
    definition is loaded as a run will load it (``ConfigError`` when it cannot be)."""
    from supervisor import bootstrap
    from supervisor.environment import local_environ

    environ = {**local_environ(os.environ, sys.executable), **plan.environment}
    loaded = bootstrap.load(environ, path=plan.definition, function=plan.function, strict=True)
    inputs = loaded.config.input
    chosen_user = loaded.config.script_user
    if not inputs:
        return (_DEFAULT_BUCKET, _DEFAULT_FOLDER), chosen_user
    return (inputs[0].bucket, inputs[0].folder), chosen_user


class _Storage:
    """The private local storage of the runs: the samples under the input location, and
    whatever a run uploads, removed after it."""

    def __init__(self, root: Path, location: tuple[str, str], samples: Sequence[Sample]) -> None:
        self.root = root
        bucket, folder = location
        self.bucket = bucket
        self._folder = folder
        self._samples: dict[Path, tuple[Sample, tuple[int, int]]] = {}
        for sample in samples:
            path = root / bucket / self.key(sample)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._samples[path] = (sample, self._copy(sample, path))

    def key(self, sample: Sample) -> str:
        return f"{self._folder}/{sample.name}" if self._folder else sample.name

    def event(self, sample: Sample) -> dict[str, Any]:
        """The S3 notification of ``sample`` uploaded to the input location."""
        record = sample_events.Sample(
            bucket=self.bucket, key=self.key(sample), size=sample.size_bytes
        )
        return sample_events.s3(record)

    def clear_outputs(self) -> None:
        """Remove what a run uploaded; copy a sample again if a run overwrote it."""
        for path in sorted(self.root.rglob("*"), reverse=True):  # children before parents
            if path in self._samples:
                sample, stamp = self._samples[path]
                if _stamp(path) != stamp:
                    self._samples[path] = (sample, self._copy(sample, path))
            elif path.is_dir() and not path.is_symlink():
                if not any(path.iterdir()):
                    path.rmdir()
            else:
                path.unlink()
        for path, (sample, _) in self._samples.items():
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                self._samples[path] = (sample, self._copy(sample, path))

    @staticmethod
    def _copy(sample: Sample, path: Path) -> tuple[int, int]:
        shutil.copyfile(sample.path, path)
        return _stamp(path)


def _stamp(path: Path) -> tuple[int, int]:
    found = path.stat()
    return found.st_size, found.st_mtime_ns


@dataclass(frozen=True)
class _Ended:
    """How a runner ended: its exit status, its result (None when it wrote none), the
    seconds it ran, and whether it was ended for running too long."""

    returncode: int
    result: dict[str, Any] | None
    elapsed_s: float
    overran: bool
    log_tail: str


def _run(plan: _Plan, size: Size, sample: Sample, storage: _Storage, root: Path) -> Run:
    """One invocation of ``sample`` at ``size``, in a fresh cgroup."""
    with CgroupLimiter(size, host_cpus=plan.host_cpus) as limiter:
        files = _RunFiles.create(root)
        spec = {
            "definition": str(plan.definition),
            "function": plan.function,
            "environment": plan.environment,
            "storage_root": str(storage.root),
            "work_root": str(root / "work"),
            "event": storage.event(sample),
            "timeout_s": plan.timeout_s,
            "cgroup": limiter.handoff(),
            "result": str(files.result),
        }
        files.spec.write_text(json.dumps(spec))
        ended = _start_and_wait(files, limiter, plan.timeout_s + _GRACE_S)
        usage = limiter.usage()
        outside = _charged_outside(limiter, ended.result)
    files.remove()
    if ended.result is not None and not ended.result.get("loaded", True):
        raise ConfigError(str(ended.result.get("detail", "")))
    status, detail = _status(ended, usage)
    result = ended.result or {}
    return Run(
        sample=sample.name,
        input_bytes=sample.size_bytes,
        status=status,
        duration_s=float(result.get("duration_s", ended.elapsed_s)),
        peak_memory_mb=(usage.peak_memory_bytes + outside) / _MIB,
        detail=detail,
    )


@dataclass(frozen=True)
class _RunFiles:
    """The spec, the result and the log of one run, in a folder of their own."""

    folder: Path

    @classmethod
    def create(cls, root: Path) -> _RunFiles:
        return cls(Path(tempfile.mkdtemp(prefix="run-", dir=root)))

    @property
    def spec(self) -> Path:
        return self.folder / "spec.json"

    @property
    def result(self) -> Path:
        return self.folder / "result.json"

    @property
    def log(self) -> Path:
        return self.folder / "runner.log"

    def remove(self) -> None:
        workspace.remove_tree(self.folder)


def _start_and_wait(files: _RunFiles, limiter: CgroupLimiter, limit_s: float) -> _Ended:
    """Start the runner, wait for it (at most ``limit_s``), and leave no process of the run
    behind, however this ends (an interruption included)."""
    started = time.monotonic()
    overran = False
    with open(files.log, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.tune.runner", str(files.spec)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=_runner_environ(),
            cwd=files.folder,
            start_new_session=True,  # its process group: killed whole if tune is interrupted
        )
        try:
            try:
                process.wait(timeout=limit_s)
            except subprocess.TimeoutExpired:
                overran = True
        finally:
            _kill_all(process, limiter)
    elapsed = time.monotonic() - started
    result = None
    if files.result.is_file():
        result = json.loads(files.result.read_text())
    return _Ended(process.returncode, result, elapsed, overran, _last_line(files.log))


def _runner_environ() -> dict[str, str]:
    """This environment, with this ``supervisor`` package first on the runner's path."""
    environ = dict(os.environ)
    package_root = str(Path(supervisor.__file__).resolve().parent.parent)
    path = environ.get("PYTHONPATH", "")
    if path.split(os.pathsep)[0] != package_root:
        environ["PYTHONPATH"] = os.pathsep.join(part for part in (package_root, path) if part)
    return environ


def _kill_all(process: subprocess.Popen[bytes], limiter: CgroupLimiter) -> None:
    """Kill the runner's process group if it still runs, then every process left in the
    cgroup (a script's detached children included), and reap the runner."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + _KILL_WAIT_S
    while True:
        left = limiter.pids()
        if not left or time.monotonic() > deadline:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_KILL_WAIT_S)


def _charged_outside(limiter: CgroupLimiter, result: dict[str, Any] | None) -> int:
    """The bytes of the runner charged outside its cgroup (its RSS when it moved in, where
    the kernel does not move charges): what the runner said, else what it took off the
    limit."""
    if limiter.moves_charges:
        return 0
    if result is not None and "rss_at_move_bytes" in result:
        return int(result["rss_at_move_bytes"])
    try:
        limit = int(limiter.memory_limit_file.read_text())
    except (OSError, ValueError):
        return 0
    return max(0, limiter.size.memory_bytes - limit)


def _status(ended: _Ended, usage: CgroupUsage) -> tuple[RunStatus, str]:
    """The run's status and why it is not ok (one line)."""
    result = ended.result
    killed = ended.returncode == -signal.SIGKILL
    if result is not None and result.get("killed_by_sigkill"):
        killed = True
    if usage.oom_killed(-signal.SIGKILL if killed else ended.returncode):
        return "oom", "killed by the out-of-memory killer at the memory limit"
    if ended.overran:
        return "timeout", f"the run did not end within the timeout and {_GRACE_S:.0f} s more"
    if result is None:
        why = f"the runner exited with {ended.returncode} without a result"
        return "failed", f"{why}: {ended.log_tail}" if ended.log_tail else why
    if result.get("timed_out"):
        return "timeout", str(result.get("detail", ""))
    if result.get("status") != "succeeded":
        return "failed", str(result.get("detail", "")) or f"the invocation {result.get('status')}"
    return "ok", ""


def _last_line(path: Path) -> str:
    """The last line of the runner's log that is not blank (a traceback's error)."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
            tail = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _line(size: Size, sample: Sample, round_: int, runs: int, run: Run) -> str:
    """``128 MB, a.mp4, run 2/3: 12.3 s, 97 MiB``, or what ended the run."""
    head = f"{size.name}, {sample.name}, run {round_}/{runs}"
    if run.status == "oom":
        return f"{head}: out of memory ({run.peak_memory_mb:.0f} MiB)"
    if run.status == "timeout":
        return f"{head}: timed out after {run.duration_s:.1f} s"
    if run.status == "failed":
        return f"{head}: failed after {run.duration_s:.1f} s ({run.detail})"
    return f"{head}: {run.duration_s:.1f} s, {run.peak_memory_mb:.0f} MiB"


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """While measuring, SIGTERM raises ``Stopped`` (so that the runs' clean-up happens)
    where no one handles it yet; a handler already installed is left as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up
        raise Stopped(signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

"""Starting a driver (``bench/drivers/``) for one implementation, and reading its JSON.

A driver runs in a clean environment, with what the Lambda runtime would set, under the
implementation's own interpreter; its stderr (the handler's log) goes to a log file of the
run, its one JSON object on stdout is the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from harness.settings import (
    DRIVERS,
    FAKE_IMAGE,
    FUNCTION,
    IN_BUCKET,
    KIB,
    LAMBDA_RUNTIME,
    LAMBDA_TIMEOUT,
    MIB,
    BenchError,
    Impl,
    LimitHit,
    b64,
    s3_event,
)

if TYPE_CHECKING:
    from harness.session import Bench
    from supervisor.lambda_sizes import CgroupUsage, LambdaSize


def environment(
    bench: Bench,
    impl: Impl,
    definition: dict[str, Any],
    *,
    runtime: str = "zip",
    endpoint: str | None = None,
) -> dict[str, str]:
    """A driver's environment: a clean one, with what the Lambda runtime would set.

    Ours always runs as the zip runtime (its handler, a plain process as no image is
    set).  Theirs runs a plain script only in the Lambda *image* runtime
    (``AWS_Lambda_Image``); in the zip runtime it always runs udocker, and only there
    does it hand a timed-out run to Batch, or delegate at all in ``batch`` mode.
    """
    tmp = bench.work / f"tmp-{impl.name}"
    tmp.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp),
        **bench.aws_env(endpoint or bench.endpoint),
        "FDL": b64(json.dumps(definition)),
    }
    if impl.path:
        env["PYTHONPATH"] = impl.path
    if impl.name == "ours":
        env["AWS_EXECUTION_ENV"] = LAMBDA_RUNTIME
        # Set by every Lambda runtime; the handler module reads it as "this is Lambda" (and
        # then builds what it can during the init phase).  Only its presence matters.
        env["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:9001"
        env["SUPERVISOR_WORK_DIR"] = str(bench.work / "ours-work")
    elif runtime == "image":
        env["AWS_EXECUTION_ENV"] = "AWS_Lambda_Image"
    else:
        env["AWS_EXECUTION_ENV"] = LAMBDA_RUNTIME
        env["UDOCKER_EXEC"] = str(DRIVERS / "fake_udocker.sh")
        env["UDOCKER_DIR"] = str(bench.work / "udocker")
        env["FAKE_UDOCKER_IMAGE"] = FAKE_IMAGE
    return env


def drive(
    bench: Bench,
    impl: Impl,
    params: dict[str, Any],
    env: dict[str, str],
    label: str,
    timeout: float = 600,
) -> tuple[dict[str, Any], float]:
    """Run a driver; return its JSON result and the monotonic instant it was spawned.

    Under a Lambda memory size (``bench.size``) the driver gets a cgroup of its own, which
    it moves into after its init phase; what the cgroup measured goes to ``bench.cgroups``,
    and an OOM kill or a timeout raises ``LimitHit``."""
    if bench.size is None:
        out, returncode, spawned = _run(bench, impl, params, env, label, timeout)
        return _result(bench, impl, label, out, returncode), spawned
    return _drive_sized(bench, bench.size, impl, params, env, label, timeout)


def _drive_sized(
    bench: Bench,
    size: LambdaSize,
    impl: Impl,
    params: dict[str, Any],
    env: dict[str, str],
    label: str,
    timeout: float,
) -> tuple[dict[str, Any], float]:
    from supervisor.lambda_sizes import CgroupLimiter, CgroupUnavailableError

    try:
        with CgroupLimiter(size) as limiter:
            cgroup = {**limiter.handoff(), "idle_s": limiter.period_us / 1e6}
            sized = {**params, "cgroup": cgroup}
            out, returncode, spawned = _run(bench, impl, sized, env, label, timeout)
            usage = limiter.usage()
    except CgroupUnavailableError as exc:
        raise BenchError(f"{impl.name} {label}: {exc}") from None
    try:
        result = _result(bench, impl, label, out, returncode)
    except BenchError as exc:
        killed = usage.oom_killed(returncode)
        _record(bench, impl, label, usage, {}, killed)
        if killed:
            raise LimitHit(
                f"{impl.name} {label}: OOM-killed at {size.memory_mb} MB "
                f"(peak {usage.peak_memory_bytes / MIB:.0f} MiB in the cgroup)"
            ) from exc
        raise
    _record(bench, impl, label, usage, result.get("cgroup", {}), usage.oom_killed(returncode))
    return result, spawned


def _record(
    bench: Bench,
    impl: Impl,
    label: str,
    usage: CgroupUsage,
    moved: dict[str, Any],
    killed: bool,
) -> None:
    """What a driver's cgroup measured, with the RSS it brought in (charged outside where
    the kernel does not move charges) added to the peak."""
    outside = 0 if moved.get("moves_charges", True) else int(moved.get("rss_at_move_bytes", 0))
    bench.cgroups.append(
        {
            "impl": impl.name,
            "label": label,
            "peak_memory_mib": (usage.peak_memory_bytes + outside) / MIB,
            "rss_at_move_mib": moved.get("rss_at_move_bytes", 0) / MIB,
            "oom_killed": killed,
            **asdict(usage),
        }
    )


def _run(
    bench: Bench,
    impl: Impl,
    params: dict[str, Any],
    env: dict[str, str],
    label: str,
    timeout: float,
) -> tuple[bytes, int, float]:
    """Start the driver, feed it ``params``; its stdout, exit status and spawn instant."""
    log_path = bench.logs / f"{label}-{impl.name}.log"
    with open(log_path, "ab") as log:
        spawned = time.monotonic()
        process = subprocess.Popen(
            impl.command(str(impl.driver)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=bench.work,
        )
        try:
            out, _ = process.communicate(json.dumps(params).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            error = LimitHit if bench.size is not None else BenchError
            raise error(f"{impl.name} {label}: no result in {timeout:.0f} s") from None
    return out, process.returncode, spawned


def _result(bench: Bench, impl: Impl, label: str, out: bytes, returncode: int) -> dict[str, Any]:
    log_path = bench.logs / f"{label}-{impl.name}.log"
    try:
        result: dict[str, Any] = json.loads(out)
    except ValueError:
        raise BenchError(
            f"{impl.name} {label}: the driver exited {returncode} without a "
            f"result (log: {log_path})"
        ) from None
    if result.get("error"):
        raise BenchError(f"{impl.name} {label}: {result['error']} (log: {log_path})")
    return result


def invoke_params(event: dict[str, Any], reps: int, *, warmup: bool = True) -> dict[str, Any]:
    """The parameters of the ``invoke`` case of a driver: a warm-up call, then ``reps``."""
    return {
        "case": "invoke",
        "function_name": FUNCTION,
        "timeout_s": LAMBDA_TIMEOUT,
        "event": event,
        "warmup_event": s3_event(IN_BUCKET, "incoming/warmup.bin", 8) if warmup else None,
        "reps": reps,
    }


def one_call(
    bench: Bench,
    impl: Impl,
    definition: dict[str, Any],
    event: dict[str, Any],
    label: str,
    **env: Any,
) -> dict[str, Any]:
    """A fresh driver: a warm-up call, then one timed call."""
    result, _ = drive(
        bench, impl, invoke_params(event, 1), environment(bench, impl, definition, **env), label
    )
    return {
        "seconds": result["seconds"][0],
        "peak_rss_mib": result["vm_hwm_kib"] / KIB,
        "rss_before_mib": result["vm_hwm_before_kib"] / KIB,
    }


def time_command(bench: Bench, command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=bench.work, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)}: {done.stderr.decode()[-500:]}")
    return elapsed

"""What a benchmark driver does inside one implementation's interpreter.

Both drivers (``ours.py``, ``theirs.py``) only say how to import their Lambda handler; the
cases are here, so that both implementations are driven the same way.  A driver reads its
parameters as one JSON object on stdin and writes its timings as one JSON object on the
stdout it was started with; whatever the handler prints or logs goes to stderr (the
runner keeps it in a log file).

This file uses the standard library only (it runs under either interpreter); the
watchdog case also hooks botocore, which both implementations use.

Cases:

Under a Lambda memory size (``bench/run.py --lambda-memory``), the parameters carry
``cgroup``: the runner made a cgroup of that size, and the driver moves itself into it
right after ``load()`` (the init phase, which Lambda runs at full speed), so that every
handler call, warm-up included, and every script it starts run inside.  ``init_s`` is the
time of ``load()``: the import of the handler module, as Lambda's Init Duration (which
does not count the interpreter's own start either).  Before each timed call that follows
another call, the driver stays idle for ``cgroup["idle_s"]`` (one CPU quota period), so
that the call starts as an event arriving at an idle warm function: with its quota full.

- ``invoke``: an optional warm-up call (not timed), then ``reps`` timed handler calls of
  ``event``, each with a fresh Lambda context of ``timeout_s``; it reports each call's
  seconds, status code, the Batch job id named in the response body, the monotonic instant
  at which each call returned (for the cold-start case, timed from the spawn by the
  runner), the length of each response body (base64 characters, the body not decoded) and
  the process's peak RSS (``VmHWM``) before and after the timed calls.
- ``watchdog``: a warm-up call, then ``reps`` calls of a script that records its pid in
  ``PIDFILE``, starts a background grandchild and sleeps.  A thread polls ``/proc`` to see
  when the script process died; ``SubmitJob`` calls are timed as they return; after the
  handler returned, the processes carrying ``marker`` in their environment are survivors
  (and are killed, since this driver started them).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["LambdaContext", "enter_cgroup", "main"]

Handler = Callable[[Any, Any], Any]
Loader = Callable[[], Handler]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class LambdaContext:
    """The Lambda context object; ``deadline`` is a ``time.monotonic()`` instant."""

    def __init__(self, function_name: str, timeout_s: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 2048
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class CaseError(Exception):
    """The handler did not do what the case needs (the message says what it did)."""


def _call(handler: Handler, event: Any, context: LambdaContext) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    try:
        response = handler(event, context)
    except SystemExit as exc:  # faas-supervisor exits on some errors
        raise CaseError(f"the handler called sys.exit({exc.code})") from None
    elapsed = time.perf_counter() - start
    if not isinstance(response, dict):
        raise CaseError(f"the handler returned {type(response).__name__}, not a dict")
    return elapsed, response


def _body(response: dict[str, Any]) -> str:
    body = response.get("body") or ""
    if response.get("isBase64Encoded") and isinstance(body, str):
        try:
            return base64.b64decode(body).decode("utf-8", "replace")
        except ValueError:
            return body
    return str(body)


def _job_id(response: dict[str, Any], context: LambdaContext) -> str | None:
    """The Batch job id the response body names (any UUID but the request id)."""
    for found in _UUID.findall(_body(response)):
        if found != context.aws_request_id:
            return str(found)
    return None


def _status(path: str) -> dict[str, int]:
    """``VmHWM``/``VmRSS``... of ``/proc/self/status``, in KiB."""
    values: dict[str, int] = {}
    with open(path) as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if name.startswith("Vm"):
                values[name] = int(rest.split()[0])
    return values


def _load(params: dict[str, Any], load: Loader) -> tuple[Handler, dict[str, Any]]:
    """The handler, and what its init phase took: ``init_s``, and ``cgroup`` (the RSS the
    process brought into the cgroup) when ``params`` name one."""
    start = time.perf_counter()
    handler = load()
    timings: dict[str, Any] = {"init_s": time.perf_counter() - start}
    if params.get("cgroup"):
        timings["cgroup"] = enter_cgroup(params["cgroup"])
    return handler, timings


def enter_cgroup(cgroup: dict[str, Any]) -> dict[str, Any]:
    """Move this process into the cgroup the runner made (``CgroupLimiter.handoff()``),
    with ``supervisor.lambda_sizes.enter_cgroup``: where the kernel does not move memory
    charges along, the memory limit is lowered by this process's RSS, which stays charged
    outside.  Returns ``rss_at_move_bytes`` and ``moves_charges``.

    Imported here, not at the top: the floor driver would pay for it.  faas-supervisor's
    interpreter does not have the project on its path: its tree is appended for this one
    module, which needs the standard library alone.
    """
    try:
        from supervisor.lambda_sizes import enter_cgroup as enter
    except ImportError:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        sys.path.append(root)
        from supervisor.lambda_sizes import enter_cgroup as enter
    moved: dict[str, Any] = enter(cgroup)
    return moved


def invoke(params: dict[str, Any], load: Loader) -> dict[str, Any]:
    handler, timings = _load(params, load)
    name, timeout = params["function_name"], float(params["timeout_s"])
    expect = set(params.get("expect_status", [200, 202]))
    warmup = params.get("warmup_event")
    if warmup is not None:
        _, response = _call(handler, warmup, LambdaContext(name, timeout))
        _check(response, expect, "warm-up")
    before = _status("/proc/self/status")
    seconds: list[float] = []
    returned_at: list[float] = []
    statuses: list[int] = []
    job_ids: list[str | None] = []
    body_chars: list[int] = []
    idle = float((params.get("cgroup") or {}).get("idle_s", 0))
    for index in range(int(params["reps"])):
        if idle and (index or warmup is not None):
            time.sleep(idle)  # the quota refills, as for an event arriving at an idle function
        context = LambdaContext(name, timeout)
        elapsed, response = _call(handler, params["event"], context)
        returned_at.append(time.monotonic())
        _check(response, expect, f"call {index + 1}")
        seconds.append(elapsed)
        statuses.append(int(response.get("statusCode", 0)))
        job_ids.append(_job_id(response, context))
        body_chars.append(len(response.get("body") or ""))
    after = _status("/proc/self/status")
    return {
        "seconds": seconds,
        "returned_at": returned_at,
        "status": statuses,
        "job_ids": job_ids,
        "body_chars": body_chars,
        "vm_hwm_before_kib": before.get("VmHWM"),
        "vm_hwm_kib": after.get("VmHWM"),
        **timings,
    }


def _check(response: dict[str, Any], expect: set[int], what: str) -> None:
    status = response.get("statusCode")
    if status not in expect:
        raise CaseError(f"{what}: status {status}, body {_body(response)[:500]!r}")


def _state(pid: int) -> str | None:
    """The process state letter, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :][:1].decode()


def _marked(marker: bytes) -> list[int]:
    """Live processes (zombies excluded) whose environment holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if marker in environ and _state(int(entry)) not in (None, "Z", "X"):
            found.append(int(entry))
    return found


class _DeathWatch(threading.Thread):
    """Waits for ``pidfile`` to name the script's pid, then for that process to die."""

    def __init__(self, pidfile: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.pidfile = pidfile
        self.stop = stop
        self.pids: list[int] = []
        self.died_at: float | None = None

    def run(self) -> None:
        pid = None
        while pid is None and not self.stop.is_set():
            try:
                with open(self.pidfile) as handle:
                    lines = handle.read().split()
                if len(lines) >= 2:  # the script's pid, then its background child's
                    self.pids = [int(item) for item in lines]
                    pid = self.pids[0]
            except (OSError, ValueError):
                pass
            time.sleep(0.002)
        while pid is not None and not self.stop.is_set():
            if _state(pid) in (None, "Z", "X"):
                self.died_at = time.monotonic()
                return
            time.sleep(0.001)


def _hook_submissions() -> list[tuple[float, bool]]:
    """Record when each ``SubmitJob`` call returned (and whether it succeeded)."""
    import botocore.client

    submissions: list[tuple[float, bool]] = []
    original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 (private)

    def timed(self: Any, operation_name: str, api_params: Any) -> Any:
        ok = False
        try:
            result = original(self, operation_name, api_params)
            ok = True
            return result
        finally:
            if operation_name == "SubmitJob":
                submissions.append((time.monotonic(), ok))

    setattr(botocore.client.BaseClient, "_make_api_call", timed)  # noqa: B010
    return submissions


def watchdog(params: dict[str, Any], load: Loader) -> dict[str, Any]:
    handler, timings = _load(params, load)
    submissions = _hook_submissions()
    name, timeout = params["function_name"], float(params["timeout_s"])
    reserve = float(params["reserve_s"])
    pidfile, marker = params["pidfile"], params["marker"].encode()
    # The warm-up only warms the process: a long deadline, as at a small Lambda size the
    # first call (which may build the supervisor) can take longer than the case's deadline.
    warmup = LambdaContext(name, float(params.get("warmup_timeout_s", 600.0)))
    _, response = _call(handler, params["warmup_event"], warmup)
    _check(response, {200}, "warm-up")
    runs = []
    for _ in range(int(params["reps"])):
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        stop = threading.Event()
        watch = _DeathWatch(pidfile, stop)
        watch.start()
        submissions.clear()
        context = LambdaContext(name, timeout)
        error = None
        try:
            _, response = _call(handler, params["event"], context)
        except CaseError as exc:
            response, error = {}, str(exc)
        returned = time.monotonic()
        watch.join(timeout=1.0)
        stop.set()
        survivors = _marked(marker)
        for pid in survivors:  # started by this driver: clean up for the next run
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        done = [at for at, ok in submissions if ok]
        kill_target = context.deadline - reserve
        runs.append(
            {
                "error": error,
                "status": response.get("statusCode"),
                "job_id": _job_id(response, context) if response else None,
                "body": _body(response)[:300] if response else "",
                "script_pids": watch.pids,
                "kill_after_target_s": (
                    None if watch.died_at is None else watch.died_at - kill_target
                ),
                "submitted_before_deadline_s": (None if not done else context.deadline - done[-1]),
                "submit_calls": len(submissions),
                "returned_before_deadline_s": context.deadline - returned,
                "survivors": len(survivors),
            }
        )
        time.sleep(0.2)
    return {"runs": runs, **timings}


CASES: dict[str, Callable[[dict[str, Any], Loader], dict[str, Any]]] = {
    "invoke": invoke,
    "watchdog": watchdog,
}


def main(load: Loader) -> None:
    params = json.loads(sys.stdin.read())
    results = os.dup(1)
    os.dup2(2, 1)  # the handler's prints and logs go to stderr
    try:
        result = CASES[params["case"]](params, load)
    except CaseError as exc:
        result = {"error": str(exc)}
    except BaseException as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    with os.fdopen(results, "w") as out:
        json.dump(result, out)

"""``python -m supervisor.tune.runner SPEC.json``: one timed invocation for ``tune``.

``supervisor.tune.measure`` starts it for each run, at full speed.  As in a Lambda
function's init phase, the interpreter's start, the definition's loading and the
supervisor's build are not limited; then the process moves itself into the cgroup that
``measure`` made for the size (``supervisor.lambda_sizes.enter_cgroup``), and times
``Supervisor.invoke`` with a local context of the function's timeout: the duration that
Lambda bills.  Every process the invocation starts is born inside the cgroup.

The spec, a JSON object:

- ``definition`` (a path), ``function`` (a name, or null): the function, loaded strictly as
  ``run`` loads it, with ``environment`` (variables) over this process's environment;
- ``storage_root``, ``work_root``: the local storage (a folder per bucket) and where
  invocation folders go;
- ``event`` (a JSON value), ``timeout_s``: what is invoked, and its timeout;
- ``cgroup``: ``CgroupLimiter.handoff()`` of the size's cgroup (null: no limit);
- ``result``: the path of the result file.

The result, a JSON object written when the run ends: ``loaded`` (false when the
definition could not be loaded, or the supervisor not built from it: then ``detail`` says
why, and nothing ran), ``duration_s``,
``status`` (the outcome's: succeeded, failed or delegated), ``timed_out`` (the watchdog
ended the script), ``killed_by_sigkill`` (the script, or a command it ran, died of
SIGKILL), ``exit_code`` (the script's; null when it did not run), ``rss_at_move_bytes``,
``moves_charges`` and ``detail`` (one line: why a run that failed did).

Logs (WARNING and above) go to standard error.  Exit code: 0 with the result of a run
written (whatever its outcome), 2 when the definition or the spec is wrong.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.escaping import escape

if TYPE_CHECKING:
    from supervisor.bootstrap import Definition
    from supervisor.outcome import Outcome
    from supervisor.runtime import Supervisor

__all__ = ["main"]

_EXIT_OK = 0
_EXIT_USAGE = 2
_MIB = 1 << 20
_DETAIL_CHARS = 300
# A command that a shell ran, killed by SIGKILL, is reported by the shell as 128 + 9.
_SIGKILL_CODES = (-int(signal.SIGKILL), 128 + int(signal.SIGKILL))


def main(argv: list[str] | None = None) -> int:
    """Run the spec named by the one argument; the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m supervisor.tune.runner SPEC.json", file=sys.stderr)
        return _EXIT_USAGE
    try:
        spec = json.loads(Path(args[0]).read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read the run's spec {args[0]}: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    result_path = Path(spec["result"])
    environ = _environ(spec)
    prepared = _prepare(spec, environ)
    if isinstance(prepared, str):
        _write_result(result_path, {"loaded": False, "detail": prepared})
        return _EXIT_USAGE
    definition, supervisor = prepared
    moved: dict[str, Any] = {"rss_at_move_bytes": 0, "moves_charges": True}
    if spec.get("cgroup"):
        from supervisor.lambda_sizes import enter_cgroup

        moved = enter_cgroup(spec["cgroup"])
    result = _invoke(supervisor, definition, spec)
    _write_result(result_path, {"loaded": True, **result, **moved})
    return _EXIT_OK


def _environ(spec: dict[str, Any]) -> dict[str, str]:
    """This process's environment as a local run sees it, with the spec's variables."""
    from supervisor.environment import local_environ

    environ = local_environ(os.environ, sys.executable)
    environ.update({str(name): str(value) for name, value in spec["environment"].items()})
    return environ


def _prepare(spec: dict[str, Any], environ: dict[str, str]) -> tuple[Definition, Supervisor] | str:
    """The definition, strictly checked (WARNING logging configured), and the supervisor
    built on the local platform and storage; or why they cannot be (one message)."""
    from supervisor import bootstrap, logs
    from supervisor.errors import SupervisorError

    logs.configure_cli("WARNING", secrets=logs.secrets_from_environ(environ))
    try:
        definition = bootstrap.load(
            environ, path=Path(spec["definition"]), function=spec["function"], strict=True
        )
        logs.configure_cli("WARNING", secrets=definition.secrets)
        supervisor = bootstrap.start(
            definition,
            environ,
            platform="local",
            work_root=Path(spec["work_root"]),
            storage_root=Path(spec["storage_root"]),
        )
    except SupervisorError as exc:
        return str(exc)
    return definition, supervisor


def _invoke(supervisor: Supervisor, definition: Definition, spec: dict[str, Any]) -> dict[str, Any]:
    """Invoke the event once, timed; what became of it."""
    from supervisor.context import InvocationContext
    from supervisor.errors import SupervisorError

    context = InvocationContext.local(definition.config.name, timeout=float(spec["timeout_s"]))
    if spec.get("cgroup"):
        context = replace(context, memory_limit_in_mb=int(spec["cgroup"]["memory_bytes"]) // _MIB)
    start = time.perf_counter()
    try:
        outcome = supervisor.invoke(spec["event"], context)
    except SupervisorError as exc:
        return {
            "duration_s": time.perf_counter() - start,
            "status": "failed",
            "timed_out": False,
            "killed_by_sigkill": False,
            "exit_code": None,
            "detail": _one_line(str(exc)),
        }
    duration = time.perf_counter() - start
    return {"duration_s": duration, **_describe(outcome)}


def _describe(outcome: Outcome) -> dict[str, Any]:
    """The status of ``outcome``, how its script ended, and why it failed (one line)."""
    records = outcome.records
    failing = [record for record in records if record.status != "succeeded"]
    first = failing[0] if failing else (records[0] if records else None)
    detail = ""
    if first is not None and failing:
        detail = first.reason
        last = _last_line(first.output)
        if last:
            detail = f"{detail}: {last}"
    elif outcome.rejected:
        detail = outcome.rejected[0][1]
    return {
        "status": outcome.status,
        "timed_out": any(record.timed_out for record in records),
        "killed_by_sigkill": any(record.exit_code in _SIGKILL_CODES for record in records),
        "exit_code": None if first is None else first.exit_code,
        "detail": _one_line(detail),
    }


def _last_line(output: bytes) -> str:
    """The last line the script wrote that is not blank."""
    for line in reversed(output.decode("utf-8", "replace").splitlines()):
        if line.strip():
            return line.strip()
    return ""


def _one_line(text: str) -> str:
    line = escape(" ".join(text.split()))
    return line if len(line) <= _DETAIL_CHARS else line[: _DETAIL_CHARS - 3] + "..."


def _write_result(path: Path, result: dict[str, Any]) -> None:
    """Write the result whole or not at all: the parent reads a file that exists as done."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result))
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main())

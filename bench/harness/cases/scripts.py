"""Cases 6 and 7: the watchdog at the deadline, and a chatty script."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import drivers
from harness.report import ge, le, median, scaled
from harness.settings import (
    CHATTY_LINE,
    FAKE_IMAGE,
    FUNCTION,
    IN_BUCKET,
    KIB,
    MIB,
    RESERVE,
    WATCHDOG_DEADLINE,
    BenchError,
    Impl,
    s3_event,
)

if TYPE_CHECKING:
    from harness.session import Bench

# A driver of case 7 that has not answered by then counts as failed (theirs holds the whole
# output in memory, and could be slow or killed at large sizes).
CHATTY_TIMEOUT = 300.0


def case_6(bench: Bench) -> None:
    """The watchdog: Lambda timeout 6 s, reserve 2 s, ``lambda-batch``; the script
    writes its pid, starts a background grandchild and sleeps.  The driver sees when the
    script process died (relative to deadline - reserve), when SubmitJob returned
    (relative to the deadline) and which processes of the run were left."""
    case = f"6 watchdog ({WATCHDOG_DEADLINE:.0f} s, reserve {RESERVE:.0f} s)"
    event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
    data = bench.each(case, partial(_watchdog_runs, bench, event))
    bench.results.cases["6_watchdog"] = data
    _watchdog_rows(bench, case, data.get("ours", {}), data.get("theirs", {}))


def _watchdog_runs(bench: Bench, event: dict[str, Any], impl: Impl) -> dict[str, Any]:
    """One driver for ``impl``: a warm-up call, then the watchdog runs, summed up."""
    marker = f"BENCH_RUN_{uuid.uuid4().hex}"
    pidfile = str(bench.work / f"pids-{impl.name}")
    variables = {"PIDFILE": pidfile, "BENCH_MARKER": marker}
    image = FAKE_IMAGE if impl.name == "theirs" else None
    definition = bench.definition("lambda-batch", "sleeper", "watchdog", variables, image)
    params = {
        "case": "watchdog",
        "function_name": FUNCTION,
        "timeout_s": WATCHDOG_DEADLINE,
        "reserve_s": RESERVE,
        "pidfile": pidfile,
        "marker": marker,
        "event": event,
        "warmup_event": s3_event(IN_BUCKET, "incoming/warmup.bin", 8),
        "reps": bench.plan.watchdog_reps,
    }
    result, _ = drivers.drive(
        bench, impl, params, drivers.environment(bench, impl, definition), "watchdog"
    )
    runs = result["runs"]
    kills = [r["kill_after_target_s"] for r in runs if r["kill_after_target_s"] is not None]
    submits = [
        r["submitted_before_deadline_s"]
        for r in runs
        if r["submitted_before_deadline_s"] is not None
    ]
    return {
        "runs": runs,
        "kill_after_target_median_s": median(kills) if kills else None,
        "submitted_before_deadline_median_s": median(submits) if submits else None,
        "returned_before_deadline_median_s": median(
            [r["returned_before_deadline_s"] for r in runs]
        ),
        "survivors_max": max(r["survivors"] for r in runs),
        "jobs": len(runs),
        "jobs_verified": bench.verify_jobs([r["job_id"] for r in runs], event),
    }


def _watchdog_rows(bench: Bench, case: str, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    o = scaled(ours.get("kill_after_target_median_s"), 1000.0)
    t = scaled(theirs.get("kill_after_target_median_s"), 1000.0)
    bench.results.row(
        case,
        "script killed, after deadline - reserve",
        "ms",
        o,
        t,
        ratio=None,
        goal="within 100 ms",
        met=None if o is None else abs(o) <= 100,
    )
    o, t = (
        ours.get("submitted_before_deadline_median_s"),
        theirs.get("submitted_before_deadline_median_s"),
    )
    bench.results.row(
        case,
        "SubmitJob returned, before the deadline",
        "s",
        o,
        t,
        ratio=None,
        goal=">= 1 s",
        met=ge(o, 1.0),
    )
    o, t = (
        ours.get("returned_before_deadline_median_s"),
        theirs.get("returned_before_deadline_median_s"),
    )
    bench.results.row(case, "handler returned, before the deadline", "s", o, t, ratio=None)
    o, t = ours.get("survivors_max"), theirs.get("survivors_max")
    bench.results.row(
        case,
        "processes of the run left alive (max)",
        "",
        o,
        t,
        ratio=None,
        goal="0",
        met=None if o is None else o == 0,
    )
    bench.results.jobs_row(case, ours, theirs)


def case_7(bench: Bench) -> None:
    """A chatty script: the Lambda handler runs a script that writes N MiB of 96-byte lines
    (a prepared file) to stdout; beside it, the same script writing them to /dev/null.
    Each run is a fresh driver (a warm-up call, then the timed one), the implementations
    and the two scripts taking turns; the difference of the median handler times is what
    the output costs.  Besides the time: the driver's peak RSS (VmHWM), how many of the
    lines are in the handler's log, and how much of the output the response body holds.
    Ours must log every line; theirs (its image runtime, a plain script) logs none at INFO
    and returns the whole output, read into memory, in the body."""
    case = f"7 chatty script, {bench.plan.chatty_mib} MiB of stdout"
    text = bench.work / "chatty.txt"
    chatty = _ChattyFile(text, _write_chatty_file(text, bench.plan.chatty_mib * MIB))
    event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
    measure = {
        f"{impl.name} {script}": partial(_chatty_run, bench, impl, script, chatty, event)
        for impl in bench.impls
        for script in ("chatty", "silent")
    }
    samples = bench.rounds(case, dict.fromkeys(measure, bench.plan.chatty_reps), measure)
    text.unlink()
    data: dict[str, Any] = {"lines": chatty.lines, "bytes": chatty.size}
    for impl in bench.impls:
        data[impl.name] = {
            script: _chatty_summary(samples[f"{impl.name} {script}"])
            for script in ("chatty", "silent")
        }
    bench.results.cases["7_chatty_script"] = data
    _chatty_rows(bench, case, data)


@dataclass(frozen=True)
class _ChattyFile:
    path: Path
    lines: int

    @property
    def size(self) -> int:
        return self.lines * len(CHATTY_LINE % (0, 0))


def _chatty_run(
    bench: Bench, impl: Impl, script: str, chatty: _ChattyFile, event: dict[str, Any]
) -> dict[str, Any]:
    """One fresh driver of ``impl`` running ``script`` (a warm-up call, the timed call)."""
    label = f"chatty-{script}"
    variables = {"CHATTY_FILE": str(chatty.path)}
    definition = bench.definition("lambda", script, "chatty", variables=variables)
    env = drivers.environment(bench, impl, definition, runtime="image")
    log = bench.logs / f"{label}-{impl.name}.log"
    log.unlink(missing_ok=True)
    result, _ = drivers.drive(
        bench, impl, drivers.invoke_params(event, 1), env, label, timeout=CHATTY_TIMEOUT
    )
    logged = log.read_bytes().count(b"frame=")
    log.unlink()
    if impl.name == "ours" and script == "chatty" and logged != chatty.lines:
        raise BenchError(f"ours {label}: {logged} of the {chatty.lines} lines in the log")
    return {
        "seconds": result["seconds"][0],
        "peak_rss_mib": result["vm_hwm_kib"] / KIB,
        "rss_before_mib": result["vm_hwm_before_kib"] / KIB,
        "lines_logged": logged,
        # Base64 characters -> bytes (the body holds the output, or its tail, base64-encoded).
        "body_mib": result["body_chars"][0] * 3 / 4 / MIB,
    }


def _chatty_summary(side: dict[str, Any]) -> dict[str, Any]:
    """Medians of the times, the largest RSS, the fewest lines logged, the largest body."""
    if "samples" not in side:
        return side
    samples = side["samples"]
    return {
        **side,
        "seconds": [sample["seconds"] for sample in samples],
        "median_s": median([sample["seconds"] for sample in samples]),
        "peak_rss_mib": max(sample["peak_rss_mib"] for sample in samples),
        "rss_before_mib": max(sample["rss_before_mib"] for sample in samples),
        "lines_logged": min(sample["lines_logged"] for sample in samples),
        "body_mib": max(sample["body_mib"] for sample in samples),
    }


def _write_chatty_file(text: Path, size: int) -> int:
    """Write about ``size`` bytes of numbered lines, a multiple of 10,000; return how many."""
    lines = size // len(CHATTY_LINE % (0, 0)) // 10_000 * 10_000
    with open(text, "w") as handle:
        for start in range(0, lines, 10_000):
            handle.write("".join(CHATTY_LINE % (i, i) for i in range(start, start + 10_000)))
    return lines


def _cell(side: dict[str, Any], key: str) -> Any:
    """``side[key]``, or "failed" when the side did not finish (its error is in the JSON)."""
    return "failed" if "error" in side else side.get(key)


def _chatty_rows(bench: Bench, case: str, data: dict[str, Any]) -> None:
    ours, theirs = data.get("ours", {}), data.get("theirs", {})
    per_100 = {name: _added_per_100(bench, data.get(name, {})) for name in ("ours", "theirs")}
    for script, metric in (
        ("chatty", "handler time, script writing to stdout"),
        ("silent", "handler time, the same script silent"),
    ):
        o, t = _cell(ours.get(script, {}), "median_s"), _cell(theirs.get(script, {}), "median_s")
        bench.results.row(case, metric, "s", o, t)
    bench.results.row(
        case,
        "added by the output, per 100 MiB",
        "s",
        per_100["ours"],
        per_100["theirs"],
        goal="<= 1.5 s",
        met=le(per_100["ours"], 1.5),
    )
    for script, metric in (
        ("chatty", "peak RSS (VmHWM), script writing to stdout"),
        ("silent", "peak RSS (VmHWM), the same script silent"),
    ):
        o, t = (
            _cell(ours.get(script, {}), "peak_rss_mib"),
            _cell(theirs.get(script, {}), "peak_rss_mib"),
        )
        bench.results.row(case, metric, "MiB", o, t)
    lines = data["lines"]
    o, t = (
        _lines(ours.get("chatty", {}), lines),
        _lines(theirs.get("chatty", {}), lines) if theirs else None,
    )
    bench.results.row(
        case,
        "lines of output in the handler's log",
        "",
        o,
        t,
        goal="all",
        met=None if o is None else o == f"{lines:,}/{lines:,}",
    )
    o, t = _cell(ours.get("chatty", {}), "body_mib"), _cell(theirs.get("chatty", {}), "body_mib")
    bench.results.row(case, "output in the response body", "MiB", o, t)


def _added_per_100(bench: Bench, side: dict[str, Any]) -> float | str | None:
    chatty, silent = side.get("chatty", {}), side.get("silent", {})
    if "error" in chatty or "error" in silent:
        return "failed"
    if "median_s" not in chatty or "median_s" not in silent:
        return None
    return float((chatty["median_s"] - silent["median_s"]) * 100 / bench.plan.chatty_mib)


def _lines(side: dict[str, Any], lines: int) -> str | None:
    if "error" in side:
        return "failed"
    if "lines_logged" not in side:
        return None
    return f"{side['lines_logged']:,}/{lines:,}"

"""Cases 6 and 7: the watchdog at the deadline, and a chatty script."""

from __future__ import annotations

import uuid
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
    """A chatty script: ours' Lambda handler runs a script that writes N MiB of 100-byte
    lines (a prepared file) to stdout, which is logged; beside it, the same script writing
    them to /dev/null.  Each run is a fresh driver (a warm-up call, then the timed one),
    the two alternating; the difference of the median handler times is what the output
    costs.  Every line must be in the driver's log (its JSON lines, on stderr)."""
    case = f"7 chatty script, {bench.plan.chatty_mib} MiB of stdout"
    text = bench.work / "chatty.txt"
    lines = _write_chatty_file(text, bench.plan.chatty_mib * MIB)
    ours = bench.impls[0]
    event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
    definition = partial(bench.definition, "lambda", output="chatty")
    runs = iter(range(1_000_000))

    def run(script: str) -> dict[str, Any]:
        label = f"chatty-{script}-{next(runs)}"
        variables = {"CHATTY_FILE": str(text)}
        sample = drivers.one_call(
            bench, ours, definition(script=script, variables=variables), event, label
        )
        log = bench.logs / f"{label}-{ours.name}.log"
        found = log.read_bytes().count(b"frame=")
        log.unlink()
        if script == "chatty" and found != lines:
            raise BenchError(f"{label}: {found} of the {lines} lines in the log")
        return sample

    sides = {name: partial(run, name) for name in ("chatty", "silent")}
    data = bench.rounds(case, {name: bench.plan.chatty_reps for name in sides}, sides)
    text.unlink()
    for side in data.values():
        if "samples" in side:
            side["seconds"] = [sample["seconds"] for sample in side["samples"]]
            side["median_s"] = median(side["seconds"])
    bench.results.cases["7_chatty_script"] = data
    _chatty_rows(bench, case, data["chatty"].get("median_s"), data["silent"].get("median_s"))


def _write_chatty_file(text: Path, size: int) -> int:
    """Write about ``size`` bytes of numbered lines, a multiple of 10,000; return how many."""
    lines = size // len(CHATTY_LINE % (0, 0)) // 10_000 * 10_000
    with open(text, "w") as handle:
        for start in range(0, lines, 10_000):
            handle.write("".join(CHATTY_LINE % (i, i) for i in range(start, start + 10_000)))
    return lines


def _chatty_rows(bench: Bench, case: str, chatty: float | None, silent: float | None) -> None:
    added = None if chatty is None or silent is None else chatty - silent
    per_100 = None if added is None else added * 100 / bench.plan.chatty_mib
    bench.results.row(case, "handler time, script writing to stdout", "s", chatty)
    bench.results.row(case, "handler time, the same script silent", "s", silent)
    bench.results.row(
        case,
        "added by the output, per 100 MiB",
        "s",
        per_100,
        goal="<= 1.5 s",
        met=le(per_100, 1.5),
    )

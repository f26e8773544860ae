"""Cases 1 to 3: a cold start, a warm delegation to Batch, a warm small invocation."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import drivers
from harness.report import le, median, p90, ratio, scaled
from harness.settings import (
    DRIVERS,
    IN_BUCKET,
    KIB,
    OUT_BUCKET,
    BenchError,
    Impl,
    failure,
    s3_event,
)

if TYPE_CHECKING:
    from harness.session import Bench

COLD_CASE = "1 cold start"


# The floors of case 1, run on ours' interpreter and path: the floor, and the floor with
# pydantic's import (what validating the definition with pydantic models costs before the
# first model).  Each: its key in the results, the driver's extra parameters, what it is.
FLOORS = {
    "floor": ({}, "botocore import, one Batch client, one SubmitJob: no supervisor"),
    "floor_pydantic": (
        {"pydantic": True},
        "the floor and `from pydantic import BaseModel` in its init: pydantic's import",
    ),
}
# The cold start aimed at: spawn to SubmitJob returned (at a Lambda size: the init) at most
# this times the floor's.
FLOOR_GOAL = 1.3


@dataclass
class _ColdSamples:
    """What the cold-start rounds gathered: per implementation, its times and jobs, or the
    error that stopped it; per floor (``FLOORS``), its times and jobs."""

    samples: dict[str, dict[str, list[float]]]
    jobs: dict[str, list[str | None]]
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    floors: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    pydantic_files: set[str] = field(default_factory=set)

    @classmethod
    def empty(cls, impls: list[Impl]) -> _ColdSamples:
        keys = ("python_s", "import_s", "first_call_s", "init_s", "handler_s")
        floor_keys = ("first_call_s", "init_s", "handler_s")
        return cls(
            samples={i.name: {key: [] for key in keys} for i in impls},
            jobs={**{impl.name: [] for impl in impls}, **{name: [] for name in FLOORS}},
            floors={name: {key: [] for key in floor_keys} for name in FLOORS},
        )


def case_1(bench: Bench) -> None:
    """Cold start: a fresh interpreter importing the handler module (also without it, to
    net out the interpreter's own start), and spawn -> first handler call returned for
    a ``batch``-mode invocation (interpreter, imports, definition, client, SubmitJob).
    The implementations alternate run by run; the first round is not counted.  Under a
    Lambda memory size, as Lambda's REPORT line: the init duration (the driver's import of
    the handler module, at full speed) and the first handler call's duration (in the
    cgroup: the billed one); the floor's init is botocore's import and the client.  The
    floors (``FLOORS``) run in the same rounds, on ours' interpreter and path
    (``bench.impls[0]``): the floor + pydantic imports the pydantic that ours imports."""
    case = COLD_CASE
    event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
    cold = _ColdSamples.empty(bench.impls)
    floor_impls = [
        replace(bench.impls[0], name=name, driver=DRIVERS / "floor.py") for name in FLOORS
    ]
    for round_ in range(bench.plan.cold_reps + 1):
        for floor_impl in floor_impls:
            _floor_run(bench, floor_impl, event, cold, counted=round_ > 0)
        for impl in bench.impls:
            if impl.name not in cold.errors:
                _cold_run(bench, impl, event, cold, counted=round_ > 0)
    data = _cold_data(bench, cold, event)
    bench.results.cases["1_cold_start"] = data
    _cold_rows(bench, case, data)


def _floor_run(
    bench: Bench, floor_impl: Impl, event: dict[str, Any], cold: _ColdSamples, *, counted: bool
) -> None:
    """One run of a floor driver: botocore, a Batch client and SubmitJob, no supervisor
    (and pydantic's import, for the floor + pydantic)."""
    extra, _ = FLOORS[floor_impl.name]
    result, spawned = drivers.drive(
        bench,
        floor_impl,
        {**drivers.invoke_params(event, 1, warmup=False), **extra},
        drivers.environment(bench, bench.impls[0], {}),
        "cold",
    )
    cold.jobs[floor_impl.name].extend(result["job_ids"])
    if "pydantic_file" in result:
        cold.pydantic_files.add(result["pydantic_file"])
    if counted:
        samples = cold.floors[floor_impl.name]
        samples["first_call_s"].append(result["returned_at"][0] - spawned)
        samples["init_s"].append(result["init_s"])
        samples["handler_s"].append(result["seconds"][0])


def _cold_run(
    bench: Bench, impl: Impl, event: dict[str, Any], cold: _ColdSamples, *, counted: bool
) -> None:
    """Time a bare interpreter, the import and the first call of ``impl``, once."""
    env = drivers.environment(bench, impl, bench.definition("batch", "copy", "cold"))
    bare = imported = 0.0
    try:
        if bench.size is None:  # at a size, the init is measured inside the driver
            bare = drivers.time_command(bench, impl.command("-c", "pass"), env)
            module = impl.command("-c", f"import {impl.module}")
            imported = drivers.time_command(bench, module, env)
        result, spawned = drivers.drive(
            bench, impl, drivers.invoke_params(event, 1, warmup=False), env, "cold"
        )
    except BenchError as exc:
        print(f"  {COLD_CASE}: {exc}", file=sys.stderr)
        cold.errors[impl.name] = failure(exc)
        return
    if not counted:
        return
    samples = cold.samples[impl.name]
    samples["python_s"].append(bare)
    samples["import_s"].append(imported)
    samples["first_call_s"].append(result["returned_at"][0] - spawned)
    samples["init_s"].append(result["init_s"])
    samples["handler_s"].append(result["seconds"][0])
    cold.jobs[impl.name].extend(result["job_ids"])


def _cold_data(bench: Bench, cold: _ColdSamples, event: dict[str, Any]) -> dict[str, Any]:
    """The medians of every implementation and of the floor, and their jobs checked."""
    data: dict[str, Any] = {}
    for impl in bench.impls:
        if impl.name in cold.errors:
            data[impl.name] = cold.errors[impl.name]
            continue
        values = cold.samples[impl.name]
        net = [i - p for i, p in zip(values["import_s"], values["python_s"], strict=True)]
        data[impl.name] = {
            "module": impl.module,
            "samples": values,
            "python_median_s": median(values["python_s"]),
            "import_median_s": median(values["import_s"]),
            "import_net_median_s": median(net),
            "first_call_median_s": median(values["first_call_s"]),
            "init_median_s": median(values["init_s"]),
            "handler_median_s": median(values["handler_s"]),
            "jobs_verified": bench.verify_jobs(cold.jobs[impl.name], event),
            "jobs": len(cold.jobs[impl.name]),
        }
    for name, (_, what) in FLOORS.items():
        values = cold.floors[name]
        data[name] = {
            "what": what,
            "samples": values["first_call_s"],
            "init_samples": values["init_s"],
            "first_call_median_s": median(values["first_call_s"]),
            "init_median_s": median(values["init_s"]),
            "handler_median_s": median(values["handler_s"]),
            "jobs_verified": bench.verify_jobs(cold.jobs[name], event),
            "jobs": len(cold.jobs[name]),
        }
    pydantic, floor = data["floor_pydantic"], data["floor"]
    pydantic["pydantic_from"] = sorted({str(Path(file).parent) for file in cold.pydantic_files})
    pydantic["goal_x"] = FLOOR_GOAL
    for prefix, key in (("", "first_call_median_s"), ("init_", "init_median_s")):
        pydantic[f"{prefix}floor_ratio"] = pydantic[key] / floor[key]
        # What the goal leaves for the rest of the supervisor; negative: over it already.
        pydantic[f"{prefix}left_of_goal_s"] = FLOOR_GOAL * floor[key] - pydantic[key]
    return data


def _cold_rows(bench: Bench, case: str, data: dict[str, Any]) -> None:
    if bench.size is not None:
        _sized_cold_rows(bench, case, data)
        return
    ours, theirs = data.get("ours", {}), data.get("theirs", {})
    ms = 1000.0
    for key, metric, goal in (
        ("python_median_s", "bare interpreter start (python -c pass)", ""),
        ("import_median_s", "python -c 'import <handler module>'", ""),
        ("import_net_median_s", "  the import alone (less bare start)", "<= 0.5x theirs"),
        ("first_call_median_s", "spawn -> first batch call returned", "<= 0.5x theirs"),
    ):
        o, t = scaled(ours.get(key), ms), scaled(theirs.get(key), ms)
        r = ratio(o, t)
        bench.results.row(case, metric, "ms", o, t, goal=goal, met=le(r, 0.5) if goal else None)
    o, t = (
        scaled(data["floor"]["first_call_median_s"], ms),
        scaled(theirs.get("first_call_median_s"), ms),
    )
    bench.results.row(
        case,
        "  floor: botocore + client + SubmitJob only",
        "ms",
        o,
        t,
        note="the least any botocore-based supervisor needs; the ratio is its best",
    )
    _pydantic_rows(bench, case, data, init=False)
    bench.results.jobs_row(case, ours, theirs)


def _pydantic_rows(bench: Bench, case: str, data: dict[str, Any], *, init: bool) -> None:
    """The floor + pydantic beside the floor: its median (spawn -> SubmitJob returned; with
    ``init``, its init duration, the floor's in the reference column), its ratio to the
    floor's, and what the goal (``FLOOR_GOAL`` times the floor's) leaves for the rest of a
    supervisor once pydantic's import is paid."""
    pydantic, prefix = data["floor_pydantic"], "init_" if init else ""
    key = "init_median_s" if init else "first_call_median_s"
    metric = "init" if init else "+ from pydantic import BaseModel"
    ms = 1000.0
    bench.results.row(
        case,
        f"  floor + pydantic: {metric}",
        "ms",
        scaled(pydantic[key], ms),
        reference=scaled(data["floor"][key], ms) if init else None,
        note="the floor and pydantic's import: what validating with pydantic models costs "
        "before the first model",
    )
    bench.results.row(
        case, "    floor + pydantic / floor", "x", pydantic[f"{prefix}floor_ratio"], ratio=None
    )
    bench.results.row(
        case,
        f"    {FLOOR_GOAL}x floor leaves for the rest",
        "ms",
        scaled(pydantic[f"{prefix}left_of_goal_s"], ms),
        note=f"{FLOOR_GOAL} times the floor's, less the floor + pydantic's (negative: over it)",
    )


def _sized_cold_rows(bench: Bench, case: str, data: dict[str, Any]) -> None:
    """At a Lambda size: init and first-call durations, as Lambda's REPORT line, beside
    the floor's (the reference column)."""
    ours, theirs, floor = data.get("ours", {}), data.get("theirs", {}), data["floor"]
    ms = 1000.0

    def medians(key: str) -> tuple[float | None, float | None, float | None]:
        return scaled(ours.get(key), ms), scaled(theirs.get(key), ms), scaled(floor.get(key), ms)

    o, t, f = medians("init_median_s")
    bench.results.row(case, "init duration (handler module import)", "ms", o, t, reference=f)
    bench.results.row(
        case,
        "  ours / floor (botocore + Batch client)",
        "x",
        ratio(o, f),
        ratio(t, f),
        ratio=None,
        goal=f"<= {FLOOR_GOAL}x",
        met=le(ratio(o, f), FLOOR_GOAL),
    )
    _pydantic_rows(bench, case, data, init=True)
    o, t, f = medians("handler_median_s")
    bench.results.row(
        case,
        "first handler call (billed duration)",
        "ms",
        o,
        t,
        reference=f,
        goal="<= 100 ms",
        met=le(o, 100.0),
    )
    o, t, f = medians("first_call_median_s")
    bench.results.row(case, "spawn -> first batch call returned", "ms", o, t, reference=f)
    bench.results.jobs_row(case, ours, theirs)


def case_2(bench: Bench) -> None:
    """Warm ``batch``-mode delegation: one process, a warm-up call, then N timed calls
    (each a SubmitJob); every job is looked up on the server afterwards."""
    case = "2 warm batch delegation"
    event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
    calls = bench.plan.batch_calls

    def run(impl: Impl) -> dict[str, Any]:
        env = drivers.environment(bench, impl, bench.definition("batch", "copy", "batch"))
        params = drivers.invoke_params(event, calls)
        params["warmup_event"] = event
        result, _ = drivers.drive(bench, impl, params, env, "batch")
        return {
            "seconds": result["seconds"],
            "median_s": median(result["seconds"]),
            "p90_s": p90(result["seconds"]),
            "jobs": len(result["job_ids"]),
            "jobs_verified": bench.verify_jobs(result["job_ids"], event),
        }

    data = bench.each(case, run)
    bench.results.cases["2_batch_delegation"] = data
    bench.results.latency_rows(case, data, f"handler latency, {calls} calls")
    bench.results.jobs_row(case, data.get("ours", {}), data.get("theirs", {}))


def case_3(bench: Bench) -> None:
    """A warm small ``lambda`` invocation: 10 KiB in, the script copies it to the output
    folder, one upload; a warm-up call, then N timed calls in one process."""
    case = "3 warm small invocation"
    event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
    calls = bench.plan.small_calls

    def run(impl: Impl) -> dict[str, Any]:
        output = f"small-{impl.name}"
        env = drivers.environment(
            bench, impl, bench.definition("lambda", "copy", output), runtime="image"
        )
        result, _ = drivers.drive(bench, impl, drivers.invoke_params(event, calls), env, "small")
        head = bench.s3.head_object(Bucket=OUT_BUCKET, Key=f"{output}/small.bin")
        if head["ContentLength"] != 10 * KIB:
            raise BenchError(f"{impl.name}: {output}/small.bin has {head['ContentLength']} B")
        return {
            "seconds": result["seconds"],
            "median_s": median(result["seconds"]),
            "p90_s": p90(result["seconds"]),
        }

    data = bench.each(case, run)
    bench.results.cases["3_small_invocation"] = data
    bench.results.latency_rows(case, data, f"handler latency, {calls} calls")

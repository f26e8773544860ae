"""Cases 1 to 3: a cold start, a warm delegation to Batch, a warm small invocation."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness import drivers
from harness.report import le, median, p90, ratio, scaled
from harness.settings import DRIVERS, IN_BUCKET, KIB, OUT_BUCKET, BenchError, Impl, s3_event

if TYPE_CHECKING:
    from harness.session import Bench


def case_1(bench: Bench) -> None:
    """Cold start: a fresh interpreter importing the handler module (also without it, to
    net out the interpreter's own start), and spawn -> first handler call returned for
    a ``batch``-mode invocation (interpreter, imports, definition, client, SubmitJob).
    The implementations alternate run by run; the first round is not counted."""
    case = "1 cold start"
    event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
    samples: dict[str, dict[str, list[float]]] = {
        impl.name: {"python_s": [], "import_s": [], "first_call_s": []} for impl in bench.impls
    }
    jobs: dict[str, list[str | None]] = {impl.name: [] for impl in bench.impls}
    errors: dict[str, str] = {}
    floor_impl = replace(bench.impls[0], name="floor", driver=DRIVERS / "floor.py")
    floor: list[float] = []
    for round_ in range(bench.plan.cold_reps + 1):
        floor_result, floor_spawned = drivers.drive(
            bench,
            floor_impl,
            drivers.invoke_params(event, 1, warmup=False),
            drivers.environment(bench, bench.impls[0], {}),
            "cold",
        )
        jobs.setdefault("floor", []).extend(floor_result["job_ids"])
        if round_:
            floor.append(floor_result["returned_at"][0] - floor_spawned)
        for impl in bench.impls:
            if impl.name in errors:
                continue
            env = drivers.environment(bench, impl, bench.definition("batch", "copy", "cold"))
            try:
                bare = drivers.time_command(bench, impl.command("-c", "pass"), env)
                imported = drivers.time_command(
                    bench, impl.command("-c", f"import {impl.module}"), env
                )
                result, spawned = drivers.drive(
                    bench, impl, drivers.invoke_params(event, 1, warmup=False), env, "cold"
                )
            except BenchError as exc:
                print(f"  {case}: {exc}", file=sys.stderr)
                errors[impl.name] = str(exc)
                continue
            if round_ == 0:
                continue
            samples[impl.name]["python_s"].append(bare)
            samples[impl.name]["import_s"].append(imported)
            samples[impl.name]["first_call_s"].append(result["returned_at"][0] - spawned)
            jobs[impl.name].extend(result["job_ids"])
    data: dict[str, Any] = {}
    for impl in bench.impls:
        if impl.name in errors:
            data[impl.name] = {"error": errors[impl.name]}
            continue
        values = samples[impl.name]
        net = [i - p for i, p in zip(values["import_s"], values["python_s"], strict=True)]
        data[impl.name] = {
            "module": impl.module,
            "samples": values,
            "python_median_s": median(values["python_s"]),
            "import_median_s": median(values["import_s"]),
            "import_net_median_s": median(net),
            "first_call_median_s": median(values["first_call_s"]),
            "jobs_verified": bench.verify_jobs(jobs[impl.name], event),
            "jobs": len(jobs[impl.name]),
        }
    data["floor"] = {
        "what": "botocore import, one Batch client, one SubmitJob: no supervisor",
        "samples": floor,
        "first_call_median_s": median(floor),
        "jobs_verified": bench.verify_jobs(jobs["floor"], event),
        "jobs": len(jobs["floor"]),
    }
    bench.results.cases["1_cold_start"] = data
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

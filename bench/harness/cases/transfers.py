"""Cases 4 and 5: many output files (with and without a latency proxy), a big input and output."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import drivers, proxy
from harness.report import ge, le, median, ratio
from harness.settings import (
    BIG_BANDWIDTH,
    CONCURRENCY,
    IN_BUCKET,
    KIB,
    MIB,
    OUT_BUCKET,
    PROXY_DELAY,
    BenchError,
    Impl,
    s3_event,
)

if TYPE_CHECKING:
    from harness.session import Bench


def case_4(bench: Bench) -> None:
    """Many output files: the script hard-links a prepared tree of 10 KiB files (N in the
    output folder, M in a subfolder) to the output folder; handler time and files per
    second, beside raw parallel ``put_object`` calls of the same files from the
    benchmark itself (one client, 10 threads).  Twice: against the moto server, and
    behind a proxy adding 20 ms to every request.  Each run of an implementation is a
    fresh driver (a warm-up call, then the timed one), and the sides take turns."""
    source = bench.work / "many-source"
    files = _many_source(source, bench.plan.many_top, bench.plan.many_sub)
    total = len(files)
    event = s3_event(IN_BUCKET, "incoming/small.bin", 10 * KIB)
    data: dict[str, Any] = {"files": total}
    for label, delay in (("plain", 0.0), ("proxy", PROXY_DELAY)):
        case = f"4 {total:,} files" + (f", +{delay * 1000:.0f} ms/request" if delay else "")
        with proxy.endpoint(bench.endpoint, delay, bench.logs) as endpoint:
            measure: dict[str, Callable[[], dict[str, Any]]] = {
                "raw": partial(_raw_puts, bench, files, source, f"many-{label}-raw", endpoint)
            }
            for impl in bench.impls:
                measure[impl.name] = partial(
                    _many_run, bench, impl, label, endpoint, source, event, total
                )
            reps = {name: bench.plan.many_reps for name in measure}
            if delay:
                reps["theirs"] = bench.plan.many_reps_slow
            sides = bench.rounds(case, reps, measure)
        for side in sides.values():
            if "samples" in side:
                side["seconds"] = [sample["seconds"] for sample in side["samples"]]
                side["median_s"] = median(side["seconds"])
                side["files_per_s"] = total / side["median_s"]
        data[label] = sides
        _many_rows(bench, case, sides, slowed=bool(delay))
    bench.results.cases["4_many_files"] = data


def _many_source(source: Path, top: int, sub: int) -> list[Path]:
    """``top`` files of 10 random KiB in ``source`` and ``sub`` in ``source/sub``."""
    (source / "sub").mkdir(parents=True, exist_ok=True)
    files = [source / f"file-{i:04d}.bin" for i in range(top)]
    files += [source / "sub" / f"file-{i:04d}.bin" for i in range(sub)]
    for path in files:
        path.write_bytes(os.urandom(10 * KIB))
    return files


def _many_rows(bench: Bench, case: str, sides: dict[str, Any], *, slowed: bool) -> None:
    ours, theirs, raw = sides.get("ours", {}), sides.get("theirs", {}), sides["raw"]
    of, tf, rf = ours.get("files_per_s"), theirs.get("files_per_s"), raw.get("files_per_s")
    if slowed:
        goal, met = ">= 5x theirs", ge(ratio(of, tf), 5.0)
    else:
        goal, met = ">= 0.9x raw", ge(ratio(of, rf), 0.9)
    bench.results.row(
        case,
        "handler time",
        "s",
        ours.get("median_s"),
        theirs.get("median_s"),
        reference=raw.get("median_s"),
    )
    bench.results.row(case, "files per second", "files/s", of, tf, reference=rf, goal=goal, met=met)
    bench.results.row(
        case,
        "  ours / raw parallel puts",
        "x",
        ratio(of, rf),
        ratio(tf, rf),
        ratio=None,
    )


def _many_run(
    bench: Bench,
    impl: Impl,
    label: str,
    endpoint: str,
    source: Path,
    event: dict[str, Any],
    total: int,
) -> dict[str, Any]:
    output = f"many-{label}-{impl.name}"
    bench.delete_prefix(f"{output}/")
    variables = {"SOURCE_DIR": str(source)}
    definition = bench.definition("lambda", "many", output, variables=variables)
    sample = drivers.one_call(
        bench, impl, definition, event, f"many-{label}", runtime="image", endpoint=endpoint
    )
    stored = bench.count_objects(f"{output}/")
    if stored != total:
        raise BenchError(f"{impl.name}: {stored} of {total} files on the server")
    return sample


def _raw_puts(
    bench: Bench, files: list[Path], source: Path, prefix: str, endpoint: str
) -> dict[str, Any]:
    client = bench.client("s3", endpoint)

    def put(path: Path) -> None:
        key = f"{prefix}/{path.relative_to(source).as_posix()}"
        client.put_object(Bucket=OUT_BUCKET, Key=key, Body=path.read_bytes())

    client.head_bucket(Bucket=OUT_BUCKET)  # connect before the clock starts
    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(put, files))
    return {"seconds": time.perf_counter() - start}


def case_5(bench: Bench) -> None:
    """A big input and output: N MiB in, the script hard-links it into the output
    folder (no copy), N MiB out.  Handler time, throughput over the 2N MiB moved, and
    the driver process's peak RSS (VmHWM, the largest of its runs).  Twice: against the
    moto server, beside raw boto3 ``download_file`` plus ``upload_file`` of the same bytes
    from the benchmark; and against an S3-like endpoint (a proxy moving 50 MiB/s per
    connection each way, serving ranged GETs at the cost of the range), beside both raw
    strategies there: one stream (``get_object`` to a file, ``put_object``) and ranged +
    parallel (``download_file``, ``upload_file``), the faster being the limit.  Each run
    of an implementation is a fresh driver (a warm-up call, then the timed one), and the
    sides take turns."""
    size = bench.plan.big_mib * MIB
    big = bench.work / "big.bin"
    with open(big, "wb") as handle:
        for _ in range(bench.plan.big_mib):
            handle.write(os.urandom(MIB))
    bench.s3.upload_file(str(big), IN_BUCKET, "incoming/big.bin")
    big.unlink()
    event = s3_event(IN_BUCKET, "incoming/big.bin", size)
    data: dict[str, Any] = {"bandwidth_mib_per_s": BIG_BANDWIDTH}
    for label, bandwidth in (("plain", 0.0), ("capped", BIG_BANDWIDTH)):
        case = f"5 {bench.plan.big_mib} MiB in + out"
        if bandwidth:
            case += f", {bandwidth:.0f} MiB/s per connection"
        with proxy.endpoint(bench.endpoint, 0.0, bench.logs, bandwidth) as endpoint:
            measure: dict[str, Callable[[], dict[str, Any]]] = {}
            if bandwidth:
                # The proxy reads its copy of the object now, not during a timed run.
                client = bench.client("s3", endpoint)
                client.get_object(Bucket=IN_BUCKET, Key="incoming/big.bin", Range="bytes=0-0")
                measure["raw_stream"] = partial(_raw_stream, bench, endpoint)
            measure["raw"] = partial(_raw_big, bench, endpoint)
            for impl in bench.impls:
                measure[impl.name] = partial(_big_run, bench, impl, event, size, endpoint)
            sides = bench.rounds(case, {name: bench.plan.big_reps for name in measure}, measure)
        for side in sides.values():
            if "samples" in side:
                _big_summary(side, size)
        data[label] = sides
        _big_rows(bench, case, sides)
    bench.results.cases["5_big_transfer"] = data
    bench.s3.delete_object(Bucket=IN_BUCKET, Key="incoming/big.bin")


def _big_run(
    bench: Bench, impl: Impl, event: dict[str, Any], size: int, endpoint: str
) -> dict[str, Any]:
    output = f"big-{impl.name}"
    definition = bench.definition("lambda", "big", output)
    sample = drivers.one_call(
        bench, impl, definition, event, "big", runtime="image", endpoint=endpoint
    )
    head = bench.s3.head_object(Bucket=OUT_BUCKET, Key=f"{output}/big.out")
    if head["ContentLength"] != size:
        raise BenchError(f"{impl.name}: {output}/big.out has {head['ContentLength']} B")
    bench.delete_prefix(f"{output}/")
    return sample


def _big_summary(side: dict[str, Any], size: int) -> None:
    """A side's median time, throughput and largest RSS, from its samples."""
    side["seconds"] = [sample["seconds"] for sample in side["samples"]]
    side["median_s"] = median(side["seconds"])
    side["mib_per_s"] = 2 * size / MIB / side["median_s"]
    if "peak_rss_mib" in side["samples"][0]:
        side["peak_rss_mib"] = max(s["peak_rss_mib"] for s in side["samples"])
        side["rss_before_mib"] = max(s["rss_before_mib"] for s in side["samples"])


def _big_rows(bench: Bench, case: str, data: dict[str, Any]) -> None:
    ours, theirs = data.get("ours", {}), data.get("theirs", {})
    raw, stream = data["raw"], data.get("raw_stream")
    o, t = ours.get("median_s"), theirs.get("median_s")
    limit = raw.get("median_s")
    if stream is not None:  # the faster raw strategy is the limit
        timed = [s["median_s"] for s in (raw, stream) if isinstance(s.get("median_s"), float)]
        limit = min(timed) if len(timed) == 2 else None
    against = "best raw" if stream is not None else "raw"
    results = bench.results
    results.row(
        case,
        "handler time",
        "s",
        o,
        t,
        reference=limit,
        goal=f"<= 1.1x {against}",
        met=le(ratio(o, limit), 1.1),
    )
    if stream is not None:
        what = "  raw, one stream (get_object to a file, put_object)"
        results.row(case, what, "s", "", "", reference=stream.get("median_s"))
        what = "  raw, ranged + parallel (download_file, upload_file)"
        results.row(case, what, "s", "", "", reference=raw.get("median_s"))
    what = f"  ours / {against}" + ("" if stream is not None else " download + upload")
    results.row(case, what, "x", ratio(o, limit), ratio(t, limit), ratio=None)
    results.row(
        case,
        "throughput (in + out)",
        "MiB/s",
        ours.get("mib_per_s"),
        theirs.get("mib_per_s"),
        reference=None if limit is None else 2 * bench.plan.big_mib / limit,
    )
    results.row(
        case,
        "peak RSS of the process (VmHWM)",
        "MiB",
        ours.get("peak_rss_mib"),
        theirs.get("peak_rss_mib"),
        goal="<= 100 MiB",
        met=le(ours.get("peak_rss_mib"), 100.0),
    )
    results.row(
        case,
        "  of which before the timed call",
        "MiB",
        ours.get("rss_before_mib"),
        theirs.get("rss_before_mib"),
    )


def _raw_big(bench: Bench, endpoint: str) -> dict[str, Any]:
    """Ranged + parallel: boto3's ``download_file`` and ``upload_file`` (8 MiB parts, 10
    at a time)."""
    client = bench.client("s3", endpoint)
    client.head_bucket(Bucket=OUT_BUCKET)
    dest = bench.work / "raw-big.bin"
    start = time.perf_counter()
    client.download_file(IN_BUCKET, "incoming/big.bin", str(dest))
    middle = time.perf_counter()
    client.upload_file(str(dest), OUT_BUCKET, "big-raw/big.out")
    end = time.perf_counter()
    dest.unlink()
    bench.delete_prefix("big-raw/")
    return {"seconds": end - start, "download_s": middle - start, "upload_s": end - middle}


def _raw_stream(bench: Bench, endpoint: str) -> dict[str, Any]:
    """One stream each way: ``get_object``'s body written to a file, then one
    ``put_object`` of the file."""
    client = bench.client("s3", endpoint)
    client.head_bucket(Bucket=OUT_BUCKET)
    dest = bench.work / "raw-big.bin"
    start = time.perf_counter()
    body = client.get_object(Bucket=IN_BUCKET, Key="incoming/big.bin")["Body"]
    with open(dest, "wb") as handle:
        for piece in body.iter_chunks(MIB):
            handle.write(piece)
    middle = time.perf_counter()
    with open(dest, "rb") as handle:
        client.put_object(Bucket=OUT_BUCKET, Key="big-raw/big.out", Body=handle)
    end = time.perf_counter()
    dest.unlink()
    bench.delete_prefix("big-raw/")
    return {"seconds": end - start, "download_s": middle - start, "upload_s": end - middle}

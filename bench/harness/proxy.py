"""The latency proxy (``bench/latency_proxy.py``) in front of the moto server: a delay per
request, and optionally a bandwidth per connection with GETs served from copies of the objects
(an endpoint that moves bytes as S3 does)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.settings import BENCH, BenchError


@contextmanager
def latency_proxy(
    upstream: str, delay: float, logs: Path, bandwidth_mib: float = 0.0
) -> Iterator[str]:
    """A latency proxy in front of ``upstream`` (its log in ``logs``); yields its URL.  With
    ``bandwidth_mib``, each connection moves that many MiB/s each way, and GETs of objects
    are served from the proxy's copies (moto reads a whole object for each ranged GET)."""
    limits = ["--bandwidth", str(bandwidth_mib), "--cache-objects"] if bandwidth_mib else []
    process = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "latency_proxy.py"),
            "--upstream",
            upstream,
            "--delay",
            str(delay),
            *limits,
        ],
        stdout=subprocess.PIPE,
        stderr=open(logs / "proxy.log", "wb"),  # noqa: SIM115
    )
    assert process.stdout is not None
    url = process.stdout.readline().decode().strip()
    if not url.startswith("http://"):
        process.kill()
        raise BenchError(f"the latency proxy did not start (log: {logs / 'proxy.log'})")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def endpoint(upstream: str, delay: float, logs: Path, bandwidth_mib: float = 0.0) -> Iterator[str]:
    """``upstream`` itself without a delay or a bandwidth, else a proxy in front of it."""
    if not delay and not bandwidth_mib:
        yield upstream
        return
    with latency_proxy(upstream, delay, logs, bandwidth_mib) as url:
        yield url

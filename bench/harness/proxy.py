"""The latency proxy (``bench/latency_proxy.py``) in front of the moto server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.settings import BENCH, BenchError


@contextmanager
def latency_proxy(upstream: str, delay: float, logs: Path) -> Iterator[str]:
    """A latency proxy in front of ``upstream`` (its log in ``logs``); yields its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "latency_proxy.py"),
            "--upstream",
            upstream,
            "--delay",
            str(delay),
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
def endpoint(upstream: str, delay: float, logs: Path) -> Iterator[str]:
    """``upstream`` itself without a delay, else a latency proxy in front of it."""
    if not delay:
        yield upstream
        return
    with latency_proxy(upstream, delay, logs) as url:
        yield url

"""Real cgroup v1 limits at a Lambda size: a busy /bin/sh throttled, an allocation
OOM-killed, and no cgroup left behind.  Skipped where this host cannot create them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.lambda_sizes import (
    CgroupLimiter,
    CgroupUnavailableError,
    LambdaSize,
    check_hierarchies,
)

MIB = 1 << 20


def _cgroups_writable() -> str | None:
    """Why cgroups cannot be used here, or None."""
    try:
        check_hierarchies()
        CgroupLimiter(LambdaSize(128)).create().remove()
    except CgroupUnavailableError as exc:
        return str(exc)
    return None


_WHY_NOT = _cgroups_writable()
pytestmark = pytest.mark.skipif(_WHY_NOT is not None, reason=f"cgroups unusable: {_WHY_NOT}")


@pytest.fixture
def limiter() -> Iterator[CgroupLimiter]:
    with CgroupLimiter(LambdaSize(128)) as made:
        yield made


def _held(command: list[str]) -> subprocess.Popen[bytes]:
    """``command`` started, waiting for a line on stdin before it does anything."""
    return subprocess.Popen(command, stdin=subprocess.PIPE)


def _release(process: subprocess.Popen[bytes]) -> int:
    assert process.stdin is not None
    process.stdin.write(b"go\n")
    process.stdin.close()
    return process.wait(timeout=120)


def test_a_busy_shell_loop_is_throttled_to_the_share(limiter: CgroupLimiter) -> None:
    quota = int((limiter.paths["cpu"] / "cpu.cfs_quota_us").read_text())
    assert quota == LambdaSize(128).quota_us(limiter.host_cpus)
    loop = "read go; i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done"
    process = _held(["/bin/sh", "-c", loop])
    limiter.add(process.pid)
    assert limiter.pids() == [process.pid]
    assert _release(process) == 0
    usage = limiter.usage()
    assert usage.cpu_throttled_periods > 0
    assert usage.cpu_periods >= usage.cpu_throttled_periods
    assert not usage.oom_killed(process.returncode)


def test_children_are_born_inside(limiter: CgroupLimiter) -> None:
    process = subprocess.Popen(
        ["/bin/sh", "-c", "read go; /bin/sh -c 'cat /proc/$$/cgroup'"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    limiter.add(process.pid)
    out, _ = process.communicate(b"go\n", timeout=120)
    inside = f"/serverless-supervisor/{limiter.name}"
    for controller in ("cpu", "memory"):
        paths = [
            line.split(":", 2)[2]
            for line in out.decode().splitlines()
            if controller in line.split(":", 2)[1].split(",")
        ]
        assert paths, out
        assert paths[0].endswith(inside), (controller, paths)


def test_an_allocation_over_the_limit_is_oom_killed(limiter: CgroupLimiter) -> None:
    allocate = (
        "import sys; sys.stdin.readline(); b = bytearray(300 << 20); "
        "b[::4096] = b'x' * len(b[::4096])"
    )
    process = _held([sys.executable, "-c", allocate])
    limiter.add(process.pid)
    returncode = _release(process)
    usage = limiter.usage()
    assert returncode == -9
    assert usage.oom_killed(returncode)
    assert usage.oom_kills is None or usage.oom_kills >= 1
    assert 0.9 * 128 * MIB <= usage.peak_memory_bytes <= 128 * MIB


def test_the_cgroups_are_gone_afterwards_even_with_a_process_left() -> None:
    process = _held(["/bin/sh", "-c", "read go"])
    with CgroupLimiter(LambdaSize(512)) as made:
        limiter = made
        paths = dict(made.paths)
        assert all(path.is_dir() for path in paths.values())
        assert (paths["memory"] / "memory.limit_in_bytes").read_text().strip() == str(512 * MIB)
        made.add(process.pid)
    try:
        assert not any(path.exists() for path in paths.values())
        assert limiter.paths == {}
        # Back in the cgroups it came from.
        own = Path("/proc/self/cgroup").read_text()
        assert Path(f"/proc/{process.pid}/cgroup").read_text() == own
    finally:
        _release(process)


def test_a_process_lowers_the_limit_by_what_stays_charged_outside(
    limiter: CgroupLimiter,
) -> None:
    limiter.account_outside(60 * MIB)
    written = int(limiter.memory_limit_file.read_text())
    assert written == (128 * MIB if limiter.moves_charges else 68 * MIB)


def test_a_process_moves_itself_in_with_the_handoff(limiter: CgroupLimiter) -> None:
    code = (
        "import json, sys; from pathlib import Path; "
        "from supervisor.lambda_sizes import enter_cgroup; "
        "moved = enter_cgroup(json.loads(sys.stdin.read())); "
        "print(json.dumps([moved, Path('/proc/self/cgroup').read_text()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(limiter.handoff()).encode(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    moved, cgroups = json.loads(done.stdout)
    assert moved["moves_charges"] == limiter.moves_charges
    assert 1 * MIB < moved["rss_at_move_bytes"] < 128 * MIB
    inside = f"/serverless-supervisor/{limiter.name}"
    assert sum(line.endswith(inside) for line in cgroups.splitlines()) >= 2
    limit = int(limiter.memory_limit_file.read_text())
    if limiter.moves_charges:
        assert limit == 128 * MIB
    else:  # the RSS it brought stays charged outside: taken off the limit
        assert limit == 128 * MIB - moved["rss_at_move_bytes"]

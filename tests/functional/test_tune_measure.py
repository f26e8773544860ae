"""``tune``'s measurements: real /bin/sh scripts through the real pipeline, each run in a
real cgroup v1 of the target's size.  Skipped where this host cannot create cgroups.

The host may be busy (CI keeps its cores loaded meanwhile): the tests check shapes (much
slower at 128 MB, an OOM below a size, longer for a bigger input), never times.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from supervisor.errors import ConfigError
from supervisor.lambda_sizes import (
    CgroupLimiter,
    CgroupUnavailableError,
    InstanceSize,
    LambdaSize,
    Size,
)
from supervisor.tune import measure as measure_module
from supervisor.tune.measure import default_script_user, measure
from supervisor.tune.model import Measurement, Sample
from tests.cgroups import needs_cgroups

MIB = 1 << 20


# A single-threaded busy loop: about a fifth of a CPU-second at full speed.
CPU_SCRIPT = """\
i=0
while [ $i -lt 80000 ]; do i=$((i+1)); done
echo "looped $i times" > "$TMP_OUTPUT_DIR/loop.txt"
"""
# Touches about 300 MiB, page by page.
MEMORY_SCRIPT = """\
python3 -c "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096]); print(len(b))"
"""
# Work in proportion to the input's bytes (incompressible: gzip reads all of it).
SCALING_SCRIPT = """\
gzip -1 -c "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/input.gz"
"""
SLEEPING_SCRIPT = """\
touch "$TMP_OUTPUT_DIR/started"
sleep 300
"""
FAILING_SCRIPT = """\
echo "cannot read the input: unknown format" >&2
exit 3
"""


_WORK_ROOTS: list[Path] = []


@pytest.fixture(autouse=True)
def _remove_work_roots() -> Iterator[None]:
    """The work folders' parents, made outside pytest's private tmp_path, go after each test."""
    yield
    while _WORK_ROOTS:
        shutil.rmtree(_WORK_ROOTS.pop(), ignore_errors=True)


class Function:
    """A function definition with its script, its sample inputs, and a marker in the
    script's environment to find any of its processes left behind."""

    def __init__(
        self, tmp_path: Path, script: str, *, reserve_s: int = 10, extra: str = ""
    ) -> None:
        self.given = tmp_path / "given"
        self.given.mkdir(parents=True)
        # The script runs as nobody: its work folder must be reachable by every user.
        self.work_dir = Path(tempfile.mkdtemp(prefix="tune-test-")) / "work"
        self.work_dir.parent.chmod(0o755)
        _WORK_ROOTS.append(self.work_dir.parent)
        self.marker = f"tune-test-{uuid.uuid4().hex}"
        (self.given / "script.sh").write_text(script)
        self.definition = self.given / "function.yaml"
        self.definition.write_text(
            textwrap.dedent(
                f"""\
                name: tuned
                init_script: script.sh
                input:
                  - storage_provider: s3
                    path: uploads/incoming
                output:
                  - storage_provider: s3
                    path: results/done
                container:
                  timeout_threshold: {reserve_s}
                  environment:
                    Variables:
                      TUNE_TEST_MARKER: {self.marker}
                """
            )
            + extra
        )

    def sample(self, name: str, size: int) -> Sample:
        path = self.given / name
        path.write_bytes(os.urandom(size))
        return Sample.of(path)

    def measure(
        self, samples: list[Sample], targets: list[Size], *, runs: int = 1, timeout_s: float = 120
    ) -> tuple[list[Measurement], list[str]]:
        lines: list[str] = []
        before = _snapshot(self.given)
        found = measure(
            self.definition,
            None,
            samples,
            targets,
            runs=runs,
            timeout_s=timeout_s,
            work_dir=self.work_dir,
            progress=lines.append,
        )
        # Nothing written outside work_dir, nothing left in it, nothing left running.
        assert _snapshot(self.given) == before
        assert sorted(path.name for path in self.given.parent.iterdir()) == ["given"]
        assert list(self.work_dir.iterdir()) == []
        assert _marked(self.marker) == []
        assert _runners(self.work_dir) == []
        return found, lines


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
    }


def _processes() -> Iterator[tuple[int, bytes, bytes]]:
    """(pid, command line, environment) of the live processes but this one."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            yield int(entry), cmdline, environ


def _marked(marker: str) -> list[int]:
    """The processes whose environment holds ``marker``: the scripts' processes."""
    return [pid for pid, _, environ in _processes() if marker.encode() in environ]


def _runners(work_dir: Path) -> list[int]:
    """The runner processes started for ``work_dir``."""
    return [
        pid
        for pid, cmdline, _ in _processes()
        if b"supervisor.tune.runner" in cmdline and str(work_dir).encode() in cmdline
    ]


def _cgroups_of(pid: int) -> list[Path]:
    """The cgroups left that a limiter of process ``pid`` made."""
    probe = CgroupLimiter(LambdaSize(128)).create()
    try:
        groups = {path.parent for path in probe.paths.values()}
        return [
            child
            for group in groups
            for child in group.iterdir()
            if child.is_dir() and child.name.startswith(f"{pid}-") and child.name != probe.name
        ]
    finally:
        probe.remove()


@pytest.fixture
def no_cgroup_left() -> Iterator[None]:
    yield
    assert _cgroups_of(os.getpid()) == []


def _median(measurement: Measurement, sample: Sample) -> float:
    median = measurement.median_s(sample.name)
    assert median is not None, measurement.runs
    return median


@needs_cgroups
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.usefixtures("no_cgroup_left")
def test_a_cpu_bound_script_slows_down_with_less_memory_until_one_vcpu(tmp_path: Path) -> None:
    function = Function(tmp_path, CPU_SCRIPT)
    sample = function.sample("a.bin", 1000)
    instance = InstanceSize("m5.large", 2, 8192)
    targets: list[Size] = [LambdaSize(128), LambdaSize(1769), LambdaSize(3008), instance]
    found, lines = function.measure([sample], targets, runs=3)

    assert [m.target.name for m in found] == ["128 MB", "1769 MB", "3008 MB", "m5.large"]
    assert all(run.status == "ok" for m in found for run in m.runs), [m.runs for m in found]
    assert all(len(m.runs) == 3 for m in found)
    small, one_vcpu, more, batch = (_median(m, sample) for m in found)
    assert small > 3 * one_vcpu
    # Single-threaded: a second vCPU's worth of share does not make it much faster.
    assert more / one_vcpu > 0.6
    assert all(m.peak_memory_mb() > 1 for m in found)

    host = CgroupLimiter(instance).host_cpus
    lambda_small = found[0].target
    assert (lambda_small.kind, lambda_small.memory_mb, lambda_small.capped) == (
        "lambda",
        128,
        False,
    )
    assert lambda_small.cpus_given == pytest.approx(128 / 1769)
    assert batch > 0
    assert found[3].target.kind == "batch"
    assert found[3].target.memory_mb == 8192
    assert found[3].target.cpu_share == 2.0
    assert found[3].target.cpus_given == min(2.0, host)
    assert found[3].target.capped == (host < 2)
    # A line per run, round by round: every target once per round.
    assert len(lines) == 12
    assert lines[0].startswith("128 MB, a.bin, run 1/3: ")
    assert lines[0].endswith(" MiB")
    assert [line.split(",")[0] for line in lines[:4]] == [
        "128 MB",
        "1769 MB",
        "3008 MB",
        "m5.large",
    ]
    assert lines[-1].startswith("m5.large, a.bin, run 3/3: ")


@needs_cgroups
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("no_cgroup_left")
def test_a_memory_bound_script_is_oom_killed_below_its_size(tmp_path: Path) -> None:
    function = Function(tmp_path, MEMORY_SCRIPT)
    sample = function.sample("a.bin", 1000)
    found, lines = function.measure([sample], [LambdaSize(128), LambdaSize(256), LambdaSize(1024)])

    assert [m.status() for m in found] == ["oom", "oom", "ok"]
    small, middle, enough = found
    assert small.peak_memory_mb() <= 128 * 1.05
    assert middle.peak_memory_mb() <= 256 * 1.05
    assert 300 < enough.peak_memory_mb() < 1024
    assert lines[0].endswith(f"out of memory ({small.peak_memory_mb():.0f} MiB)")
    assert "out-of-memory killer" in small.runs[0].detail


@needs_cgroups
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("no_cgroup_left")
def test_a_bigger_input_takes_longer_at_the_same_size(tmp_path: Path) -> None:
    function = Function(tmp_path, SCALING_SCRIPT)
    small = function.sample("small.bin", 1 * MIB)
    big = function.sample("big.bin", 4 * MIB)
    (found,), _ = function.measure([small, big], [LambdaSize(512)], runs=2)

    assert found.status() == "ok"
    assert [run.sample for run in found.runs] == ["small.bin", "big.bin"] * 2
    assert _median(found, big) > _median(found, small)
    assert found.points()[0][0] == 1 * MIB
    assert found.points()[1][0] == 4 * MIB


@needs_cgroups
@pytest.mark.usefixtures("no_cgroup_left")
def test_a_script_past_the_timeout_is_a_timeout(tmp_path: Path) -> None:
    function = Function(tmp_path, SLEEPING_SCRIPT, reserve_s=2)
    sample = function.sample("a.bin", 1000)
    (found,), lines = function.measure([sample], [LambdaSize(1769)], timeout_s=5)

    (run,) = found.runs
    assert run.status == "timeout", run
    assert 2 <= run.duration_s < 60
    assert "deadline" in run.detail
    assert "timed out" in lines[0]


WHO_AM_I_SCRIPT = """\
if [ "$(id -u)" = 0 ]; then echo "ran as root" >&2; exit 7; fi
"""


@needs_cgroups
@pytest.mark.skipif(os.geteuid() != 0, reason="only root can run the script as another user")
@pytest.mark.usefixtures("no_cgroup_left")
def test_the_script_runs_as_nobody_unless_the_definition_says_root(tmp_path: Path) -> None:
    function = Function(tmp_path / "default", WHO_AM_I_SCRIPT)
    sample = function.sample("a.bin", 1000)
    (found,), _ = function.measure([sample], [LambdaSize(1769)])
    assert found.runs[0].status == "ok", found.runs[0]

    function = Function(tmp_path / "as-root", WHO_AM_I_SCRIPT, extra="script_user: root\n")
    sample = function.sample("a.bin", 1000)
    (found,), _ = function.measure([sample], [LambdaSize(1769)])
    assert found.runs[0].status == "failed"
    assert "ran as root" in found.runs[0].detail


@needs_cgroups
@pytest.mark.usefixtures("no_cgroup_left")
def test_a_script_that_exits_3_failed_with_its_detail(tmp_path: Path) -> None:
    function = Function(tmp_path, FAILING_SCRIPT)
    sample = function.sample("a.bin", 1000)
    (found,), lines = function.measure([sample], [LambdaSize(1769)])

    (run,) = found.runs
    assert run.status == "failed"
    assert "exited with 3" in run.detail
    assert "unknown format" in run.detail
    assert "\n" not in run.detail
    assert "failed" in lines[0]
    assert "exited with 3" in lines[0]


@needs_cgroups
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_tune_leaves_no_process_and_no_cgroup(
    tmp_path: Path, signum: signal.Signals
) -> None:
    function = Function(tmp_path, SLEEPING_SCRIPT)
    sample = function.sample("a.bin", 1000)
    code = textwrap.dedent(
        f"""\
        from pathlib import Path
        from supervisor.lambda_sizes import LambdaSize
        from supervisor.tune.measure import measure
        from supervisor.tune.model import Sample

        measure(
            Path({str(function.definition)!r}), None, [Sample.of(Path({str(sample.path)!r}))],
            [LambdaSize(1769)], runs=1, timeout_s=600, work_dir=Path({str(function.work_dir)!r}),
        )
        """
    )
    tune = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not any(function.work_dir.rglob("started")):
            assert tune.poll() is None, tune.stderr.read() if tune.stderr else ""
            assert time.monotonic() < deadline, "the script did not start"
            time.sleep(0.05)
        assert _marked(function.marker)
        tune.send_signal(signum)
        _, err = tune.communicate(timeout=120)
    finally:
        if tune.poll() is None:
            tune.kill()
            tune.wait()
    assert tune.returncode != 0
    assert (b"Stopped" if signum == signal.SIGTERM else b"KeyboardInterrupt") in err
    assert _marked(function.marker) == []
    assert _runners(function.work_dir) == []
    assert _cgroups_of(tune.pid) == []
    assert list(function.work_dir.iterdir()) == []


def test_no_cgroups_is_said_before_any_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    function = Function(tmp_path, FAILING_SCRIPT)
    sample = function.sample("a.bin", 1000)
    empty = tmp_path / "no-cgroups"
    empty.mkdir()
    monkeypatch.setattr(measure_module, "CgroupLimiter", partial(CgroupLimiter, root=empty))
    with pytest.raises(CgroupUnavailableError, match="no cgroup v1 cpu hierarchy"):
        measure(
            function.definition,
            None,
            [sample],
            [LambdaSize(128)],
            runs=1,
            timeout_s=60,
            work_dir=function.work_dir,
        )
    assert not function.work_dir.exists()


@needs_cgroups
def test_a_wrong_definition_is_a_config_error_before_any_run(tmp_path: Path) -> None:
    function = Function(tmp_path, FAILING_SCRIPT)
    sample = function.sample("a.bin", 1000)
    function.definition.write_text("name: tuned\ninit_script: script.sh\nno_such_key: 1\n")
    with pytest.raises(ConfigError, match="no_such_key"):
        function.measure([sample], [LambdaSize(128)])


def test_the_runner_reports_a_definition_it_cannot_load(tmp_path: Path) -> None:
    definition = tmp_path / "function.yaml"
    definition.write_text("name: tuned\nexecution_mode: sometimes\n")
    result = tmp_path / "result.json"
    spec: dict[str, Any] = {
        "definition": str(definition),
        "function": None,
        "environment": {},
        "storage_root": str(tmp_path / "storage"),
        "work_root": str(tmp_path / "work"),
        "event": {},
        "timeout_s": 60,
        "cgroup": None,
        "result": str(result),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.tune.runner", str(tmp_path / "spec.json")],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    reported = json.loads(result.read_text())
    assert reported["loaded"] is False
    assert "execution_mode" in reported["detail"]


def test_the_script_user_is_the_definitions_else_sudos_caller_else_nobody(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_script_user(None, {}) == "nobody"
    assert default_script_user(None, {"SUDO_UID": "1000", "SUDO_GID": "1001"}) == "1000:1001"
    assert default_script_user(None, {"SUDO_UID": "1000"}) == "1000"
    assert default_script_user(None, {"SUDO_UID": "0", "SUDO_GID": "0"}) == "nobody"
    assert default_script_user("root", {"SUDO_UID": "1000"}) == "root"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert default_script_user(None, {"SUDO_UID": "1000"}) is None
    assert default_script_user("app", {}) == "app"

"""Lambda memory sizes: the CPU share and quota Lambda gives each, and the sizes refused."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from supervisor.errors import SupervisorError
from supervisor.lambda_sizes import (
    CgroupLimiter,
    CgroupUnavailableError,
    CgroupUsage,
    InstanceSize,
    LambdaSize,
    LambdaSizeError,
    check_hierarchies,
    parse_sizes,
)


@pytest.mark.parametrize(
    ("memory_mb", "share", "vcpus", "quota_us"),
    [
        (128, 0.0724, 1, 7_236),
        (1_769, 1.0, 1, 100_000),
        (3_008, 1.7004, 2, 170_040),
        (10_240, 5.7886, 6, 578_858),
    ],
)
def test_the_cpu_share_is_proportional_to_memory(
    memory_mb: int, share: float, vcpus: int, quota_us: int
) -> None:
    size = LambdaSize(memory_mb)
    assert size.cpu_share == pytest.approx(share, abs=1e-4)
    assert size.vcpus == vcpus
    assert size.quota_us(host_cpus=64) == quota_us
    assert size.memory_bytes == memory_mb * 1024 * 1024
    assert not size.capped(64)


def test_a_size_with_more_cpu_than_the_host_is_capped_to_the_host() -> None:
    size = LambdaSize(10_240)
    assert size.capped(2)
    assert size.quota_us(host_cpus=2) == 200_000
    assert size.quota_us(host_cpus=2, period_us=50_000) == 100_000
    assert "capped" in size.describe(2)
    assert not LambdaSize(3_008).capped(2)
    assert LambdaSize(128).describe(2) == "128 MB (7.2% of a CPU)"
    assert LambdaSize(1_769).describe(2) == "1769 MB (1.00 CPUs)"


@pytest.mark.parametrize("memory_mb", [0, 127, 10_241, -128])
def test_sizes_lambda_refuses_are_refused_with_the_range(memory_mb: int) -> None:
    with pytest.raises(LambdaSizeError, match=r"128 to 10,240 MB.*" + str(memory_mb)):
        LambdaSize(memory_mb)


@pytest.mark.parametrize("value", [128.0, "128", True])
def test_a_size_is_a_whole_number(value: object) -> None:
    with pytest.raises(LambdaSizeError, match="whole number"):
        LambdaSize(value)  # type: ignore[arg-type]


def test_size_errors_are_supervisor_errors() -> None:
    assert issubclass(LambdaSizeError, SupervisorError)
    assert issubclass(CgroupUnavailableError, SupervisorError)


def test_a_list_of_sizes_is_parsed_in_order_once_each() -> None:
    assert [s.memory_mb for s in parse_sizes("128, 512,1769,128,")] == [128, 512, 1769]
    assert [s.memory_mb for s in parse_sizes("256MB")] == [256]
    with pytest.raises(LambdaSizeError, match="'big'"):
        parse_sizes("128,big")
    with pytest.raises(LambdaSizeError, match="128 to 10,240"):
        parse_sizes("64")
    with pytest.raises(LambdaSizeError, match="separated by commas"):
        parse_sizes(" , ")


def test_the_oom_killer_is_read_from_its_counter_or_from_the_exit() -> None:
    def usage(oom_kills: int | None, failures: int) -> CgroupUsage:
        return CgroupUsage(0, failures, oom_kills, 0, 0, 0.0)

    assert usage(1, 0).oom_killed()
    assert not usage(0, 5).oom_killed(-signal.SIGKILL)
    assert usage(None, 5).oom_killed(-signal.SIGKILL)
    assert not usage(None, 5).oom_killed(0)
    assert not usage(None, 0).oom_killed(-signal.SIGKILL)


def test_a_host_without_the_v1_hierarchies_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(CgroupUnavailableError, match=r"no cgroup v1 cpu hierarchy at .*/cpu"):
        check_hierarchies(tmp_path)
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    with pytest.raises(CgroupUnavailableError, match="no cgroup v1 memory hierarchy"):
        CgroupLimiter(LambdaSize(128), root=tmp_path).create()


def test_a_v2_only_host_is_said_to_be_one(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset io memory pids\n")
    with pytest.raises(CgroupUnavailableError, match=r"cgroup v2 \(unified\) hierarchy alone"):
        CgroupLimiter(LambdaSize(128), root=tmp_path).create()


def test_a_batch_instance_gets_its_vcpus_and_its_memory() -> None:
    instance = InstanceSize("m5.large", 2, 8192)
    assert instance.name == "m5.large"
    assert instance.memory_mb == 8192
    assert instance.memory_bytes == 8192 * 1024 * 1024
    assert instance.cpu_share == 2.0
    assert instance.quota_us(host_cpus=64) == 200_000
    assert not instance.capped(2)
    assert instance.describe(2) == "m5.large (2 vCPUs, 8192 MiB)"
    bigger = InstanceSize("m5.2xlarge", 8, 32768)
    assert bigger.capped(2)
    assert bigger.quota_us(host_cpus=2) == 200_000
    assert bigger.describe(2) == "m5.2xlarge (capped: 2 CPUs, not 8)"
    assert LambdaSize(128).name == "128 MB"


@pytest.mark.parametrize(("vcpus", "memory_mib"), [(0, 8192), (2, 0), (2.5, 8192), (True, 1)])
def test_an_instance_needs_whole_vcpus_and_memory(vcpus: object, memory_mib: object) -> None:
    with pytest.raises(LambdaSizeError, match=r"instance m5\.large: its .* whole number above 0"):
        InstanceSize("m5.large", vcpus, memory_mib)  # type: ignore[arg-type]


def test_the_handoff_names_the_files_a_process_writes_to_move_in(tmp_path: Path) -> None:
    limiter = CgroupLimiter(InstanceSize("m5.large", 2, 8192), root=tmp_path)
    limiter.paths = {"cpu": tmp_path / "cpu" / "g", "memory": tmp_path / "memory" / "g"}
    limiter.moves_charges = False
    assert limiter.handoff() == {
        "procs": [str(tmp_path / "cpu/g/cgroup.procs"), str(tmp_path / "memory/g/cgroup.procs")],
        "memory_limit_file": str(tmp_path / "memory/g/memory.limit_in_bytes"),
        "memory_bytes": 8192 << 20,
        "moves_charges": False,
    }

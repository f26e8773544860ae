"""The udocker executor's decisions, without udocker: which tarball is which, what the
container's environment holds, which udocker commands prepare the container (once), and
what the runtime does when preparing runs out of time."""

from __future__ import annotations

import io
import json
import stat
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from supervisor.config import parse_config
from supervisor.container import (
    Udocker,
    UdockerExecutor,
    UdockerResult,
    container_environment,
    image_kind,
    saved_image_name,
)
from supervisor.context import InvocationContext
from supervisor.deadline import Deadline
from supervisor.delegation import JobRequest
from supervisor.errors import ConfigError, DeadlineError, ExecutionError
from supervisor.execution import ExecutionResult, ProcessExecutor, ScriptRun
from supervisor.watchdog import Watchdog
from supervisor.wiring import build_supervisor

LAYER = "0123456789abcdef" * 4
NO_LIMIT = Watchdog(Deadline.none(), 0.0)


def tarball(path: Path, members: Mapping[str, bytes | None], mode: str = "w") -> Path:
    """A tar archive holding ``members`` in order (``None``: a folder)."""
    with tarfile.open(path, mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


MANIFEST = json.dumps([{"Config": "c.json", "RepoTags": ["tools/busybox:1.36"]}]).encode()


@pytest.mark.parametrize(
    ("members", "kind"),
    [
        ({"./": None, "./bin/": None, "./bin/sh": b"x"}, "rootfs"),
        ({"usr/": None, "usr/bin/env": b"x"}, "rootfs"),
        ({f"{LAYER}/": None, f"{LAYER}/layer.tar": b"x", "repositories": b"{}"}, "docker-save"),
        ({"blobs/": None, "blobs/sha256/ab": b"x", "index.json": b"{}"}, "docker-save"),
        ({"manifest.json": MANIFEST}, "docker-save"),
        ({"./oci-layout": b"{}"}, "docker-save"),
        ({"notes.txt": b"x"}, "rootfs"),
    ],
)
def test_image_kind(tmp_path: Path, members: dict[str, bytes | None], kind: str) -> None:
    assert image_kind(tarball(tmp_path / "image.tar", members)) == kind


def test_image_kind_reads_compressed_archives(tmp_path: Path) -> None:
    path = tarball(tmp_path / "image.tar.gz", {"./etc/passwd": b"root"}, "w:gz")
    assert image_kind(path) == "rootfs"


def test_image_kind_of_something_else(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    path.write_bytes(b"not a tar archive at all" * 100)
    with pytest.raises(ExecutionError, match=f"container.image_file {path}"):
        image_kind(path)


def test_saved_image_name(tmp_path: Path) -> None:
    from_manifest = tarball(tmp_path / "a.tar", {"repositories": b"{}", "manifest.json": MANIFEST})
    from_repositories = tarball(
        tmp_path / "b.tar", {"repositories": json.dumps({"app": {"v2": LAYER}}).encode()}
    )
    untagged = tarball(tmp_path / "c.tar", {"manifest.json": b'[{"RepoTags": null}]'})

    assert saved_image_name(from_manifest) == "tools/busybox:1.36"
    assert saved_image_name(from_repositories) == "app:v2"
    with pytest.raises(ExecutionError, match=r"set container\.image"):
        saved_image_name(untagged)


def test_container_environment_leaves_the_hosts_paths_out() -> None:
    host = {"PATH": "/var/lang/bin:/usr/bin", "HOME": "/home/sbx", "LD_LIBRARY_PATH": "/var/lang"}
    environment = {
        "PATH": "/var/lang/bin:/usr/bin",
        "HOME": "/home/sbx",
        "LD_LIBRARY_PATH": "/opt/mine",
        "TMPDIR": "/scratch",
        "LANG": "C.UTF-8",
        "INPUT_FILE_PATH": "/tmp/invocation-1/input/a.txt",
    }

    assert container_environment(environment, host) == {
        "LD_LIBRARY_PATH": "/opt/mine",
        "TMPDIR": "/scratch",
        "LANG": "C.UTF-8",
        "INPUT_FILE_PATH": "/tmp/invocation-1/input/a.txt",
    }
    assert "PATH" not in container_environment({"PATH": "/usr/local/bin:/usr/bin:/bin"}, {})


@pytest.mark.parametrize(("given", "expected"), [("P1", "P1"), ("f1", "F1"), ("R3", "R3")])
def test_execmode(given: str, expected: str) -> None:
    config = parse_config(f"name: fn\nudocker: {{execmode: {given}}}\n")
    assert config.udocker.execmode == expected


def test_execmode_defaults_to_the_runtimes_choice() -> None:
    assert parse_config("name: fn\n").udocker.execmode is None


def test_an_unknown_execmode_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"udocker\.execmode: 'X9' is invalid.*'P1'"):
        parse_config("name: fn\nudocker: {execmode: X9}\n")


def test_image_file_from_the_environment_and_relative_to_the_definition(tmp_path: Path) -> None:
    text = "name: fn\ncontainer: {image: app, image_file: images/app.tar}\n"
    assert parse_config(text, base=tmp_path).container.image_file == str(
        tmp_path / "images/app.tar"
    )
    overridden = parse_config(text, base=tmp_path, environ={"IMAGE_FILE": "/opt/other.tar"})
    assert overridden.container.image_file == "/opt/other.tar"


class FakeUdocker(Udocker):
    """Records the udocker commands; ``create`` and ``import`` make the container folder."""

    def __init__(self, directory: Path, *, nvidia: bool = True) -> None:
        super().__init__(directory, {})
        self.calls: list[list[str]] = []
        self.timeouts: list[float | None] = []
        self.results: dict[str, UdockerResult] = {}
        self.nvidia = nvidia

    def call(self, args: Sequence[str], timeout: float | None) -> UdockerResult:
        self.calls.append(list(args))
        self.timeouts.append(timeout)
        for key in (" ".join(args[:2]), args[0]):
            if key in self.results:
                return self.results[key]
        if args[0] in ("create", "import"):
            name = next(arg.partition("=")[2] for arg in args if arg.startswith("--name="))
            (self.directory / "containers" / name).mkdir(parents=True)
        if args[0] == "rm":
            (self.directory / "containers" / args[-1]).rmdir()
        if args[0] == "setup" and len(args) == 2:
            return UdockerResult(0, f"execmode: P1\nnvidiamode: {self.nvidia}\n")
        return UdockerResult(0, "")

    def commands(self) -> list[str]:
        return [args[0] for args in self.calls]


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return tarball(tmp_path / "rootfs.tar", {"bin/": None, "bin/sh": b"x"})


def executor(udocker: Udocker, image: str | None = "app:1", **kwargs: Any) -> UdockerExecutor:
    return UdockerExecutor(image, udocker=udocker, **kwargs)


def test_a_registry_image_is_pulled_and_prepared_once(tmp_path: Path) -> None:
    udocker = FakeUdocker(tmp_path / "udocker")
    runner = executor(udocker, execmode="F1")

    name = runner.ensure_container(NO_LIMIT)
    again = runner.ensure_container(NO_LIMIT)

    assert again == name
    assert udocker.calls == [
        ["pull", "app:1"],
        ["create", f"--name={name}", "app:1"],
        ["setup", "--execmode=F1", name],
    ]


def test_a_root_file_system_is_imported_into_the_container(tmp_path: Path, rootfs: Path) -> None:
    udocker = FakeUdocker(tmp_path / "udocker")
    name = executor(udocker, image_file=rootfs).ensure_container(NO_LIMIT)

    assert udocker.calls[0] == ["import", "--tocontainer", f"--name={name}", str(rootfs), "app:1"]
    assert udocker.commands() == ["import", "setup"]


def test_a_saved_image_is_loaded_then_created(tmp_path: Path) -> None:
    saved = tarball(tmp_path / "saved.tar", {f"{LAYER}/": None, "manifest.json": MANIFEST})
    udocker = FakeUdocker(tmp_path / "udocker")
    (udocker.directory / "repos" / "tools/busybox" / "1.36").mkdir(parents=True)

    name = executor(udocker, None, image_file=saved).ensure_container(NO_LIMIT)

    assert udocker.calls[:3] == [
        ["rmi", "-f", "tools/busybox:1.36"],
        ["load", f"--input={saved}"],
        ["create", f"--name={name}", "tools/busybox:1.36"],
    ]


def test_a_later_process_reuses_the_prepared_container(tmp_path: Path, rootfs: Path) -> None:
    first = FakeUdocker(tmp_path / "udocker")
    name = executor(first, image_file=rootfs).ensure_container(NO_LIMIT)
    later = FakeUdocker(tmp_path / "udocker")

    assert executor(later, image_file=rootfs).ensure_container(NO_LIMIT) == name
    assert later.calls == []


def test_another_mode_or_image_file_is_another_container(tmp_path: Path, rootfs: Path) -> None:
    udocker = FakeUdocker(tmp_path / "udocker")
    names = {
        executor(udocker, image_file=rootfs).ensure_container(NO_LIMIT),
        executor(udocker, image_file=rootfs, execmode="P2").ensure_container(NO_LIMIT),
        executor(udocker, "app:2", image_file=rootfs).ensure_container(NO_LIMIT),
    }
    assert len(names) == 3


def test_a_failed_step_is_an_error_and_is_retried_from_a_clean_container(
    tmp_path: Path, rootfs: Path
) -> None:
    udocker = FakeUdocker(tmp_path / "udocker")
    udocker.results["setup"] = UdockerResult(1, "Info: x\nError: invalid execmode: P9\n")
    runner = executor(udocker, image_file=rootfs, execmode="P9")

    with pytest.raises(ExecutionError, match=r"udocker setup failed .*exit 1.*invalid execmode"):
        runner.ensure_container(NO_LIMIT)
    del udocker.results["setup"]
    udocker.calls.clear()
    name = runner.ensure_container(NO_LIMIT)

    assert udocker.calls[0] == ["rm", "-f", name]
    assert udocker.commands() == ["rm", "import", "setup"]


@pytest.mark.parametrize("nvidia_set", [True, False])
def test_nvidia_setup_on_a_gpu_host(tmp_path: Path, rootfs: Path, nvidia_set: bool) -> None:
    udocker = FakeUdocker(tmp_path / "udocker", nvidia=nvidia_set)
    udocker.results["setup --nvidia"] = UdockerResult(0, "Error: host nvidia libraries not found")
    runner = executor(udocker, image_file=rootfs, gpu=lambda: True)

    if nvidia_set:
        name = runner.ensure_container(NO_LIMIT)
        assert ["setup", "--nvidia", "--force", name] in udocker.calls
    else:
        with pytest.raises(ExecutionError, match="NVIDIA GPUs"):
            runner.ensure_container(NO_LIMIT)
        assert not udocker.is_ready(udocker.calls[0][2].partition("=")[2])


def test_no_nvidia_setup_without_a_gpu(tmp_path: Path, rootfs: Path) -> None:
    udocker = FakeUdocker(tmp_path / "udocker")
    executor(udocker, image_file=rootfs, gpu=lambda: False).ensure_container(NO_LIMIT)
    assert not any("--nvidia" in args for args in udocker.calls)


def test_preparing_gets_the_time_left_and_none_when_it_is_gone(
    tmp_path: Path, rootfs: Path
) -> None:
    udocker = FakeUdocker(tmp_path / "udocker")
    now = time.monotonic()
    with pytest.raises(DeadlineError, match="no time left"):
        executor(udocker, image_file=rootfs).ensure_container(Watchdog(Deadline(now - 1.0), 0.0))
    assert udocker.calls == []

    executor(udocker, image_file=rootfs).ensure_container(Watchdog(Deadline(now + 30.0), 10.0))
    assert all(t is not None and 0 < t <= 20.0 for t in udocker.timeouts)


def test_a_missing_image_file_is_named(tmp_path: Path) -> None:
    runner = executor(FakeUdocker(tmp_path), image_file=tmp_path / "gone.tar")
    with pytest.raises(ExecutionError, match=r"app:1.*container.image_file .*gone.tar"):
        runner.ensure_container(NO_LIMIT)


class RecordingProcess(ProcessExecutor):
    """Captures what would be started, and the environment file while it exists."""

    def run_command(
        self,
        run: ScriptRun,
        watchdog: Watchdog,
        command: Sequence[str],
        environment: Mapping[str, str],
    ) -> ExecutionResult:
        self.command = list(command)
        self.environment = dict(environment)
        env_file = Path(command[3])
        self.env_mode = stat.S_IMODE(env_file.stat().st_mode)
        self.variables = json.loads(env_file.read_text())
        return ExecutionResult(0, False, 0.0, run.log_path)


def test_the_run_command_carries_no_variable(tmp_path: Path, rootfs: Path) -> None:
    work = tmp_path / "invocation"
    (work / "output").mkdir(parents=True)
    script = work / "script.sh"
    script.write_text("true\n")
    variables = {
        "SECRET": "s3cr3t-value",
        "TMP_OUTPUT_DIR": str(work / "output"),
        "TMP_INPUT_DIR": str(tmp_path / "elsewhere"),
        "PATH": "/host/bin",
    }
    process = RecordingProcess()
    udocker = FakeUdocker(tmp_path / "udocker")
    runner = executor(udocker, image_file=rootfs, process=process, environ={"PATH": "/host/bin"})

    runner.run(ScriptRun(script, variables, work, work / "log"), NO_LIMIT)

    name = runner.ensure_container(NO_LIMIT)
    assert not any("s3cr3t" in arg for arg in process.command)
    assert process.command[5:] == [
        "--quiet",
        "run",
        "--nobanner",
        f"--volume={work}",
        f"--volume={tmp_path / 'elsewhere'}",
        f"--workdir={work}",
        name,
        "/bin/sh",
        str(script),
    ]
    assert process.env_mode == 0o600
    assert process.variables == {key: v for key, v in variables.items() if key != "PATH"}
    assert not list(work.glob(".environment-*"))
    assert "SECRET" not in process.environment
    assert process.environment["UDOCKER_DIR"] == str(udocker.directory)
    assert process.environment["UDOCKER_TARBALL"] == ""


def test_udocker_gets_its_own_settings_only(tmp_path: Path) -> None:
    host = {
        "PATH": "/usr/bin:/bin",
        "UDOCKER_USE_PROOT_EXECUTABLE": "/usr/bin/proot",
        "PROOT_NO_SECCOMP": "1",
        "AWS_SECRET_ACCESS_KEY": "secret-do-not-pass",
        "FDL": "bmFtZTogZm4K",
        "HOME": "/home/sbx",
    }
    environment = Udocker(tmp_path, host).environment
    shipped = Udocker(tmp_path, {"UDOCKER_TARBALL": "/opt/udocker/tools.tar.gz"}).environment

    assert environment == {
        "PATH": "/usr/bin:/bin",
        "UDOCKER_USE_PROOT_EXECUTABLE": "/usr/bin/proot",
        "PROOT_NO_SECCOMP": "1",
        "UDOCKER_TARBALL": "",
        "UDOCKER_DIR": str(tmp_path),
        "HOME": str(tmp_path),
        "PYTHONPATH": environment["PYTHONPATH"],
    }
    assert (Path(environment["PYTHONPATH"]) / "udocker" / "umain.py").is_file()
    assert shipped["UDOCKER_TARBALL"] == "/opt/udocker/tools.tar.gz"


class FailingExecutor:
    def run(self, run: ScriptRun, watchdog: Watchdog) -> ExecutionResult:
        raise DeadlineError("udocker pull did not finish in the 3.0 s left")


class RecordingBackend:
    def __init__(self) -> None:
        self.jobs: list[JobRequest] = []

    def prepare(self) -> None:
        pass

    def submit(self, job: JobRequest, deadline: Deadline | None = None) -> str:
        self.jobs.append(job)
        return "job-1"


@pytest.mark.parametrize("mode", ["lambda", "lambda-batch"])
def test_running_out_of_time_while_preparing_is_a_timeout(tmp_path: Path, mode: str) -> None:
    script = tmp_path / "script.sh"
    script.write_text("true\n")
    config = parse_config(f"name: fn\nexecution_mode: {mode}\ninit_script: {script}\n")
    backend = RecordingBackend()
    supervisor = build_supervisor(
        config,
        platform="lambda-zip",
        environ={},
        work_root=tmp_path / "work",
        storage_root=tmp_path / "storage",
        backend=backend,
        executor=FailingExecutor(),
    )
    supervisor.prepare()

    outcome = supervisor.invoke({"hello": "world"}, InvocationContext.local("fn", timeout=30))

    record = outcome.records[0]
    assert record.timed_out
    assert "did not finish" in record.reason
    if mode == "lambda-batch":
        assert record.status == "delegated"
        assert len(backend.jobs) == 1
    else:
        assert record.status == "failed"
        assert backend.jobs == []


def test_the_zip_runtime_runs_a_container_image_with_udocker(tmp_path: Path) -> None:
    def built(text: str, platform: Any, environ: dict[str, str]) -> Any:
        config = parse_config(f"name: fn\n{text}")
        supervisor = build_supervisor(
            config,
            platform=platform,
            environ=environ,
            work_root=tmp_path,
            storage_root=tmp_path,
            backend=RecordingBackend(),
        )
        return supervisor._executor

    in_lambda = built("container: {image: app}\n", "lambda-zip", {})
    told = built("container: {image_file: /a.tar}\nudocker: {execmode: p1}\n", "lambda-zip", {})
    placed = built("container: {image: app}\n", "lambda-zip", {"UDOCKER_DIR": "/data/u"})

    assert isinstance(in_lambda, UdockerExecutor)
    assert in_lambda.container.execmode == "F1"
    assert in_lambda._udocker.directory == tmp_path / "udocker"
    assert isinstance(told, UdockerExecutor)
    assert (told.container.execmode, told.container.image_file) == ("P1", Path("/a.tar"))
    assert placed._udocker.directory == Path("/data/u")
    assert isinstance(built("container: {image: app}\n", "lambda-image", {}), ProcessExecutor)
    assert isinstance(built("container: {image: app}\n", "local", {}), ProcessExecutor)

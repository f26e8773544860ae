"""A real udocker container: Debian's proot (execmode P1) and a busybox image built offline.

The image is a root file system tarball (busybox-static and its applets) made in a tmp
folder, so nothing is downloaded: ``UDOCKER_TARBALL`` is empty and udocker runs the host's
proot.  The tests check what a user would: the files the script wrote, the objects the
Lambda handler uploaded, the processes left after a timeout, the command lines of every
process while the script runs, and that a warm invocation reuses the container.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from handlers import lambda_handler
from supervisor.container import Udocker, UdockerExecutor, UdockerResult, image_kind
from supervisor.deadline import Deadline
from supervisor.errors import DeadlineError, ExecutionError
from supervisor.execution import ExecutionResult, ScriptRun, build_environment
from supervisor.watchdog import Watchdog
from tests.functional.lambda_support import install_function

PROOT = shutil.which("proot")
BUSYBOX = Path("/bin/busybox")
IMAGE = "busybox-local:latest"
APPLETS = ("sh", "cat", "tr", "sleep", "wc", "echo", "touch", "test", "[", "cp", "env")
RELEASE = "busybox-local for the supervisor's tests\n"

pytestmark = [
    pytest.mark.skipif(PROOT is None, reason="needs Debian's proot (apt-get install proot)"),
    pytest.mark.skipif(
        not BUSYBOX.is_file(), reason="needs /bin/busybox (apt-get install busybox-static)"
    ),
]


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root file system: /bin/busybox, its applets, an account for udocker, a release file."""
    root = tmp_path_factory.mktemp("busybox-rootfs")
    for folder in ("bin", "etc", "tmp"):
        (root / folder).mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "image-release").write_text(RELEASE)
    path = root.parent / "busybox-rootfs.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(root, arcname=".")
    return path


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The host's environment with udocker's settings: its own folder, the host's proot,
    and no tools tarball (so that nothing is downloaded)."""
    monkeypatch.setenv("UDOCKER_DIR", str(tmp_path / "udocker"))
    monkeypatch.setenv("UDOCKER_USE_PROOT_EXECUTABLE", str(PROOT))
    monkeypatch.setenv("UDOCKER_TARBALL", "")
    return dict(os.environ)


class CountingUdocker(Udocker):
    """The real udocker, with a record of the commands that prepared the container."""

    def __init__(self, directory: Path, host: dict[str, str]) -> None:
        super().__init__(directory, host)
        self.commands: list[str] = []

    def call(self, args: Sequence[str], timeout: float | None) -> UdockerResult:
        self.commands.append(args[0])
        return super().call(args, timeout)


def make_executor(
    environ: dict[str, str], image_file: Path | None, image: str | None = IMAGE
) -> tuple[UdockerExecutor, CountingUdocker]:
    udocker = CountingUdocker(Path(environ["UDOCKER_DIR"]), environ)
    executor = UdockerExecutor(
        image, udocker=udocker, image_file=image_file, execmode="P1", environ=environ
    )
    return executor, udocker


def script_run(
    folder: Path,
    script: str,
    environ: dict[str, str],
    *,
    data: bytes = b"hello container\n",
    variables: dict[str, str] | None = None,
    event: Any = None,
) -> ScriptRun:
    """An invocation folder as the runtime makes it: input, output, script, environment."""
    work = folder / f"invocation-{uuid.uuid4().hex[:8]}"
    (work / "input").mkdir(parents=True)
    (work / "output").mkdir()
    (work / "input" / "in.txt").write_bytes(data)
    (work / "script.sh").write_text(script)
    environment = build_environment(
        environ=environ,
        input_file=work / "input" / "in.txt",
        input_dir=work / "input",
        output_dir=work / "output",
        object_key="incoming/in.txt",
        event_time="2026-11-28T10:00:00.000Z",
        event_json=json.dumps(event or {}),
        request_id=str(uuid.uuid4()),
        instance_ip="",
        variables=variables or {},
        query={},
    )
    return ScriptRun(work / "script.sh", environment, work, work / "output.log")


def in_background(call: Callable[[], ExecutionResult]) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(call()), daemon=True)
    thread.start()
    return thread, box


def command_lines() -> Iterator[tuple[int, bytes]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                yield int(entry), Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue


def wait_for(path: Path, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear in {timeout} s"
        time.sleep(0.02)


def test_the_script_reads_its_input_and_writes_outputs_in_the_container(
    tmp_path: Path, environ: dict[str, str], image_file: Path
) -> None:
    executor, _ = make_executor(environ, image_file)
    run = script_run(
        tmp_path,
        'set -eu\ntr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/upper.txt"\n'
        'wc -c < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/size.txt"\n'
        'cat /etc/image-release\necho "mode $container_execmode, $GREETING"\n',
        environ,
        variables={"GREETING": "hi there"},
    )

    result = executor.run(run, Watchdog(Deadline.after(60), 1.0))

    output = result.output().decode()
    assert result.succeeded, output
    assert (run.workdir / "output" / "upper.txt").read_bytes() == b"HELLO CONTAINER\n"
    assert (run.workdir / "output" / "size.txt").read_text().strip() == "16"
    assert output == f"{RELEASE}mode P1, hi there\n"
    assert not list(run.workdir.glob(".environment-*"))


def test_the_lambda_handler_runs_the_script_in_a_container(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    environ: dict[str, str],
    image_file: Path,
    s3: Any,
    make_bucket: Callable[[str], str],
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    data = os.urandom(256 * 1024)
    s3.put_object(Bucket=source, Key="incoming/blob.bin", Body=data)
    function = install_function(
        monkeypatch,
        tmp_path,
        'set -eu\ncp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.bin"\n'
        'echo "$STORAGE_OBJECT_KEY" > "$TMP_OUTPUT_DIR/key.txt"\n'
        "cat /etc/image-release\n",
        {
            "input": [{"path": f"{source}/incoming"}],
            "output": [{"path": f"{out}/results"}],
            "container": {"image": IMAGE, "image_file": str(image_file)},
            "udocker": {"execmode": "P1"},
        },
    )
    s3_part = {"bucket": {"name": source}, "object": {"key": "incoming/blob.bin"}}
    record = {"eventSource": "aws:s3", "s3": s3_part}

    response = lambda_handler.handler({"Records": [record]}, function.context(60))

    assert response["statusCode"] == 200, response
    assert base64.b64decode(response["body"]) == RELEASE.encode()
    listed = s3.list_objects_v2(Bucket=out)["Contents"]
    uploaded = {o["Key"]: s3.get_object(Bucket=out, Key=o["Key"])["Body"].read() for o in listed}
    assert uploaded == {"results/copy.bin": data, "results/key.txt": b"incoming/blob.bin\n"}
    assert [p.name for p in function.work_dir.iterdir()] == []


def test_a_timeout_kills_every_process_of_the_container(
    tmp_path: Path, environ: dict[str, str], image_file: Path
) -> None:
    executor, _ = make_executor(environ, image_file)
    executor.ensure_container(Watchdog(Deadline.none(), 0.0))
    duration = f"61.{uuid.uuid4().int % 1000:03d}"
    run = script_run(tmp_path, f"sleep {duration} &\nsleep {duration}\necho never\n", environ)

    def sleepers() -> set[int]:
        return {pid for pid, line in command_lines() if duration.encode() in line.split(b"\0")}

    thread, box = in_background(
        lambda: executor.run(run, Watchdog(Deadline.after(2.5), 0.5, grace=0.5))
    )
    seen: set[int] = set()
    while thread.is_alive() and len(seen) < 2:
        seen |= sleepers()
        time.sleep(0.02)
    thread.join(30)

    result = box[0]
    assert result.timed_out
    assert b"never" not in result.output()
    assert len(seen) >= 2, "both sleeps ran in the container"
    assert sleepers() == set()


def test_no_variable_is_on_any_command_line(
    tmp_path: Path, environ: dict[str, str], image_file: Path
) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    executor, _ = make_executor(environ, image_file)
    run = script_run(
        tmp_path,
        'echo "$SECRET $EVENT" > "$TMP_OUTPUT_DIR/seen.txt"\n'
        'touch "$TMP_OUTPUT_DIR/started"\n'
        'while [ ! -e "$TMP_INPUT_DIR/release" ]; do sleep 0.05; done\n',
        environ,
        variables={"SECRET": secret},
        event={"token": secret},
    )
    name = executor.ensure_container(Watchdog(Deadline.none(), 0.0))

    thread, box = in_background(lambda: executor.run(run, Watchdog(Deadline.after(60), 1.0)))
    try:
        wait_for(run.workdir / "output" / "started")
        lines = dict(command_lines())
        leaking = {pid: line for pid, line in lines.items() if secret.encode() in line}
        ours = [line for line in lines.values() if name.encode() in line]
        files_left = list(run.workdir.glob(".environment-*"))
    finally:
        (run.workdir / "input" / "release").touch()
        thread.join(30)

    assert leaking == {}
    assert ours, "the scan saw the udocker process of this run"
    assert files_left == []
    assert box[0].succeeded, box[0].output()
    expected = f'{secret} {{"token": "{secret}"}}\n'
    assert (run.workdir / "output" / "seen.txt").read_text() == expected


def test_warm_invocations_reuse_the_container(
    tmp_path: Path, environ: dict[str, str], image_file: Path
) -> None:
    script = 'echo "$container_uuid"\n'
    executor, udocker = make_executor(environ, image_file)

    first = executor.run(script_run(tmp_path, script, environ), Watchdog(Deadline.none(), 0.0))
    prepared = list(udocker.commands)
    second = executor.run(script_run(tmp_path, script, environ), Watchdog(Deadline.none(), 0.0))
    # A new process of the same execution environment finds the container on disk.
    later, later_udocker = make_executor(environ, image_file)
    third = later.run(script_run(tmp_path, script, environ), Watchdog(Deadline.none(), 0.0))

    assert prepared == ["import", "setup"]
    assert udocker.commands == prepared
    assert later_udocker.commands == []
    assert [first.succeeded, second.succeeded, third.succeeded] == [True, True, True]
    assert first.output() == second.output() == third.output() != b"\n"


def test_an_image_saved_by_docker_save_is_loaded(
    tmp_path: Path, environ: dict[str, str], image_file: Path
) -> None:
    scratch = Udocker(tmp_path / "scratch", environ)
    saved = tmp_path / "saved.tar"
    for args in (["import", str(image_file)], ["save", "-o", str(saved)]):
        made = scratch.call([*args, "saved/busybox:1"], 60)
        assert made.returncode == 0, made.output
    assert image_kind(saved) == "docker-save"
    executor, udocker = make_executor(environ, saved, image=None)

    result = executor.run(
        script_run(tmp_path, "cat /etc/image-release\n", environ), Watchdog(Deadline.none(), 0.0)
    )

    assert result.succeeded, result.output()
    assert result.output() == RELEASE.encode()
    assert udocker.commands == ["load", "create", "setup"]


def test_a_gpu_host_whose_libraries_udocker_cannot_find_is_an_error(
    environ: dict[str, str], image_file: Path
) -> None:
    # This host has no NVIDIA driver: `udocker setup --nvidia` copies nothing and exits 0.
    udocker = CountingUdocker(Path(environ["UDOCKER_DIR"]), environ)
    executor = UdockerExecutor(
        IMAGE, udocker=udocker, image_file=image_file, execmode="P1", gpu=lambda: True
    )

    with pytest.raises(ExecutionError, match=r"NVIDIA GPUs.*nvidia libraries not found"):
        executor.ensure_container(Watchdog(Deadline.none(), 0.0))

    assert udocker.commands == ["import", "setup", "setup", "setup"]
    name = executor.container.name()
    assert "nvidiamode: False" in udocker.call(["setup", name], 60).output
    assert not udocker.is_ready(name)


def test_preparing_past_the_deadline_is_stopped(tmp_path: Path, image_file: Path) -> None:
    # A stand-in for python that hangs, with a child, like an import of a huge image.
    duration = f"31.{uuid.uuid4().int % 1000:03d}"
    hanging = tmp_path / "hanging-python"
    hanging.write_text(f"#!/bin/sh\nsleep {duration} &\nsleep {duration}\n")
    hanging.chmod(0o755)
    udocker = Udocker(tmp_path / "udocker", {"PATH": os.environ["PATH"]}, python=str(hanging))
    executor = UdockerExecutor(IMAGE, udocker=udocker, image_file=image_file, execmode="P1")
    started = time.monotonic()

    with pytest.raises(DeadlineError, match="did not finish"):
        executor.ensure_container(Watchdog(Deadline(started + 1.0), 0.0))

    assert time.monotonic() - started < 5.0
    assert not [line for _, line in command_lines() if duration.encode() in line]
    assert not udocker.is_ready(executor.container.name())


def test_udocker_runs_under_this_python(tmp_path: Path, environ: dict[str, str]) -> None:
    udocker = Udocker(tmp_path, environ)
    version = udocker.call(["version"], 60)

    assert udocker.command(["version"])[:2] == [sys.executable, "-c"]
    assert version.returncode == 0
    assert "1.3.17" in version.output


def test_an_image_that_scar_loaded_into_the_function_is_used_from_its_repository(
    tmp_path: Path, environ: dict[str, str], image_file: Path
) -> None:
    """SCAR runs ``udocker load -i IMAGE_FILE`` with ``UDOCKER_DIR`` in the function's zip,
    sets ``UDOCKER_REPOS``/``UDOCKER_LAYERS`` to ``/var/task/udocker/...`` and leaves the
    deploying machine's path in ``container.image_file``."""
    saved = tmp_path / "saved.tar"
    scratch = Udocker(tmp_path / "scratch", environ)
    for args in (["import", str(image_file)], ["save", "-o", str(saved)]):
        made = scratch.call([*args, "saved/busybox:1"], 60)
        assert made.returncode == 0, made.output
    task = tmp_path / "task"
    loaded = Udocker(task / "udocker", environ).call(["load", "-i", str(saved)], 60)
    assert loaded.returncode == 0, loaded.output
    saved.unlink()
    repository = task / "udocker"
    before = {p: p.lstat().st_mtime_ns for p in repository.rglob("*")}
    host = {
        **environ,
        "UDOCKER_REPOS": f"{repository}/repos/",
        "UDOCKER_LAYERS": f"{repository}/layers/",
    }
    executor, udocker = make_executor(host, saved, image="saved/busybox:1")

    result = executor.run(
        script_run(tmp_path, "cat /etc/image-release\n", host), Watchdog(Deadline.none(), 0.0)
    )

    assert result.succeeded, result.output()
    assert result.output() == RELEASE.encode()
    assert udocker.commands == ["create", "setup"]
    # /var/task is read-only in Lambda: the container is made in UDOCKER_DIR only.
    assert {p: p.lstat().st_mtime_ns for p in repository.rglob("*")} == before
    assert (Path(environ["UDOCKER_DIR"]) / "containers").is_dir()


def test_a_missing_image_file_and_an_image_not_in_the_repository_is_a_clear_error(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    host = {**environ, "UDOCKER_REPOS": str(tmp_path / "repos")}
    missing = tmp_path / "deploy" / "image.tar"
    executor, udocker = make_executor(host, missing, image="saved/busybox:1")

    with pytest.raises(ExecutionError) as caught:
        executor.ensure_container(Watchdog(Deadline.none(), 0.0))

    message = str(caught.value)
    assert f"container.image_file {missing}" in message
    assert f"{tmp_path / 'repos'} has no image saved/busybox:1" in message
    assert udocker.commands == []

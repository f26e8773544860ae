"""The static ``supervisor`` binary as SCAR's Batch jobs and OSCAR run it, in an image with
neither Python nor a C library.

``build/binary/supervisor`` (``layer/binary.py``, ``./build.sh binary``) is bound into a
udocker container of a busybox-static root file system (``/bin/busybox`` and its applets,
nothing in ``/lib``), at ``/opt/faas-supervisor/bin`` as SCAR's job definitions mount it
and at ``/oscar/bin`` as OSCAR's do.  The job runs SCAR's command as written, with the
function definition and the script in ``FUNCTION_CONFIG`` and ``SCRIPT`` (base64) and an
S3 event for an object in the moto server; the tests check the object the script wrote
in the output bucket and the job's exit code.

udocker runs Debian's proot without its ``-k`` option: with it, Debian's proot 5.1.0
answers ``fstat`` with EINVAL (glibc 2.33 and later call ``newfstatat`` with
``AT_EMPTY_PATH``), so no glibc program starts, the loader of the binary's bundle included;
udocker's own proot, the one it installs from its tools tarball, does not do that.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from supervisor.container import Udocker
from tests.e2e import test_signals as stop_signals

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "layer" / "binary.py"
BINARY = ROOT / "build" / "binary" / "supervisor"
PROOT = shutil.which("proot")
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "tr", "echo", "printf", "test", "[", "ls", "env")
CONTAINER = "binary-busybox"
# SCAR 4.3.1's job definition command (scar/providers/aws/batchfunction.py), verbatim.
SCAR_COMMAND = "echo $EVENT | /opt/faas-supervisor/bin/supervisor"
# Libraries an image brings in its own LD_LIBRARY_PATH; here they are not even ELF files.
IMAGE_LIBRARY_PATH = "/opt/image-libs"
FOREIGN_LIBRARIES = ("libc.so.6", "libz.so.1", "libssl.so.3", "libpython3.11.so.1.0")
RUN_TIMEOUT = 300

pytestmark = [
    pytest.mark.slow,
    # The first test waits for the binary to be built (minutes on a busy machine).
    pytest.mark.timeout(1800),
    pytest.mark.skipif(PROOT is None, reason="needs Debian's proot (apt-get install proot)"),
    pytest.mark.skipif(
        not BUSYBOX.is_file(), reason="needs /bin/busybox (apt-get install busybox-static)"
    ),
]

# Upper-cases the input into the output folder, records the LD_LIBRARY_PATH it was given,
# and exits with the code the object's key names (``...exit-N...``), else 0.
SCRIPT = """\
tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/upper.txt"
printf '%s' "${LD_LIBRARY_PATH-unset}" > "$TMP_OUTPUT_DIR/ld-library-path.txt"
echo "converted $STORAGE_OBJECT_KEY"
case "$STORAGE_OBJECT_KEY" in
  *exit-7*) echo "cannot convert $STORAGE_OBJECT_KEY" >&2; exit 7 ;;
esac
"""


def _load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layer_binary", BUILD_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


@pytest.fixture(scope="session")
def binary() -> Path:
    """``build/binary/supervisor``, built first with ``layer/binary.py`` when it is missing or
    older than one of its sources (the project's packages, pyproject.toml, the builder).
    Building takes minutes: the build environment's first install, PyInstaller, staticx."""
    if builder.is_stale(BINARY):
        result = subprocess.run(
            [sys.executable, str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        assert result.returncode == 0, f"layer/binary.py failed:\n{result.stdout}{result.stderr}"
    assert not builder.is_stale(BINARY)
    return BINARY


@dataclass(frozen=True)
class Box:
    """A prepared udocker container of the busybox root and the way to run commands in it."""

    udocker: Udocker

    def run(
        self,
        command: list[str],
        environment: Mapping[str, str],
        *,
        binds: Mapping[Path, str],
        stdin: bytes = b"",
    ) -> subprocess.CompletedProcess[bytes]:
        # The variables go through udocker's environment file, as the supervisor passes them.
        env_file = self.udocker.directory / "job-environment.json"
        env_file.write_text(json.dumps(dict(environment)), encoding="utf-8")
        args = [
            "--quiet",
            "run",
            "--nobanner",
            "--workdir=/tmp",
            *(f"--volume={host}:{inside}" for host, inside in binds.items()),
            CONTAINER,
            *command,
        ]
        return subprocess.run(
            self.udocker.command(args, env_file),
            input=stdin,
            capture_output=True,
            env=self.udocker.environment,
            cwd=self.udocker.directory,
            timeout=RUN_TIMEOUT,
            check=False,
        )


@pytest.fixture(scope="session")
def box(tmp_path_factory: pytest.TempPathFactory) -> Box:
    """A udocker container (execmode P1) of a root with busybox only: no Python, no /lib."""
    root = tmp_path_factory.mktemp("binary-rootfs")
    for folder in ("bin", "etc", "tmp", "root", IMAGE_LIBRARY_PATH.lstrip("/")):
        (root / folder).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    for library in FOREIGN_LIBRARIES:
        (root / IMAGE_LIBRARY_PATH.lstrip("/") / library).write_text("not a library\n")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    image = root.parent / "binary-rootfs.tar.gz"
    with tarfile.open(image, "w:gz") as archive:
        archive.add(root, arcname=".")
    return udocker_box(tmp_path_factory.mktemp("binary-udocker"), image, "binary-busybox:latest")


def udocker_box(work: Path, image: Path, tag: str) -> Box:
    """The container ``CONTAINER`` of ``image`` (a root file system tarball, imported as
    ``tag``) under udocker in ``work``, execmode P1, with Debian's proot less its ``-k``."""
    proot = work / "proot-without-k"
    proot.write_text(
        "#!/bin/sh\n"
        "# Debian's proot, less udocker's -k RELEASE (see the module's docstring).\n"
        "skip=0\n"
        "for arg; do\n"
        "  shift\n"
        '  if [ "$skip" = 1 ]; then skip=0; continue; fi\n'
        '  if [ "$arg" = -k ]; then skip=1; continue; fi\n'
        '  set -- "$@" "$arg"\n'
        "done\n"
        f'exec {PROOT} "$@"\n'
    )
    proot.chmod(0o755)
    host = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "UDOCKER_USE_PROOT_EXECUTABLE": str(proot),
        "UDOCKER_TARBALL": "",
    }
    udocker = Udocker(work / "udocker", host)
    for args in (
        ["import", str(image), tag],
        ["create", f"--name={CONTAINER}", tag],
        ["setup", "--execmode=P1", CONTAINER],
    ):
        result = udocker.call(args, RUN_TIMEOUT)
        assert result.returncode == 0, f"udocker {args[0]}: {result.output}"
    return Box(udocker)


@dataclass
class Function:
    """A function deployed as SCAR deploys a batch one: its definition, script and buckets."""

    source: str
    out: str
    environment: dict[str, str]

    def event(self, key: str) -> str:
        return json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventTime": "2026-12-02T10:00:00.000Z",
                        "s3": {"bucket": {"name": self.source}, "object": {"key": key}},
                    }
                ]
            }
        )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def function(
    aws_env: dict[str, str], make_bucket: Callable[[str], str], s3: Any
) -> Callable[[bytes, str], Function]:
    """Deploy the function and upload ``data`` as ``input/KEY`` to its input bucket."""

    def deploy(data: bytes, key: str) -> Function:
        source, out = make_bucket("binary-in"), make_bucket("binary-out")
        s3.put_object(Bucket=source, Key=f"input/{key}", Body=data)
        definition = (
            "name: binary-job\n"
            "execution_mode: batch\n"
            "input:\n"
            f"- {{storage_provider: s3, path: {source}/input}}\n"
            "output:\n"
            f"- {{storage_provider: s3, path: {out}/output}}\n"
        )
        environment = {
            **aws_env,
            "AWS_LAMBDA_FUNCTION_NAME": "binary-job",
            "FUNCTION_CONFIG": _b64(definition),
            "SCRIPT": _b64(SCRIPT),
        }
        return Function(source, out, environment)

    return deploy


def _output(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode("utf-8", errors="replace")


def _objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed
    }


SCAR_BIND = {BINARY.parent: "/opt/faas-supervisor/bin"}


def test_the_binary_is_static(binary: Path) -> None:
    assert builder.is_static(binary)
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    assert ldd.returncode != 0
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr
    if shutil.which("file"):
        described = subprocess.run(["file", str(binary)], capture_output=True, text=True)
        assert "statically linked" in described.stdout, described.stdout


def test_the_image_has_neither_python_nor_a_c_library(binary: Path, box: Box) -> None:
    probe = (
        "for f in /lib64/ld-linux-x86-64.so.2 /lib/ld-musl-x86_64.so.1 "
        "/lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc.so.6 "
        "/usr/bin/python3 /usr/local/bin/python3; do [ -e $f ] && echo found $f; done; "
        "ls /opt/faas-supervisor/bin"
    )

    result = box.run(["/bin/sh", "-c", probe], {}, binds=SCAR_BIND)

    assert result.returncode == 0, _output(result)
    assert "found" not in _output(result)
    assert "supervisor" in result.stdout.decode().split()


def test_scars_batch_command_runs_the_job_and_uploads_the_output(
    binary: Path, box: Box, function: Callable[[bytes, str], Function], s3: Any
) -> None:
    deployed = function(b"hello from the batch job\n", "photo.txt")
    environment = {**deployed.environment, "EVENT": deployed.event("input/photo.txt")}

    result = box.run(["/bin/sh", "-c", SCAR_COMMAND], environment, binds=SCAR_BIND)

    assert result.returncode == 0, _output(result)
    uploaded = _objects(s3, deployed.out)
    assert uploaded["output/upper.txt"] == b"HELLO FROM THE BATCH JOB\n"
    assert "converted input/photo.txt" in _output(result)


def test_the_job_exits_with_the_scripts_exit_code(
    binary: Path, box: Box, function: Callable[[bytes, str], Function]
) -> None:
    deployed = function(b"bad input\n", "exit-7.txt")
    environment = {**deployed.environment, "EVENT": deployed.event("input/exit-7.txt")}

    result = box.run(["/bin/sh", "-c", SCAR_COMMAND], environment, binds=SCAR_BIND)

    assert result.returncode == 7, _output(result)
    assert "cannot convert input/exit-7.txt" in _output(result)


def test_the_event_on_stdin_alone_runs_the_job(
    binary: Path, box: Box, function: Callable[[bytes, str], Function], s3: Any
) -> None:
    """OSCAR's synchronous calls: the event on standard input only, no EVENT."""
    deployed = function(b"sent on stdin\n", "stdin.txt")

    result = box.run(
        ["/oscar/bin/supervisor"],
        deployed.environment,
        binds={BINARY.parent: "/oscar/bin"},
        stdin=deployed.event("input/stdin.txt").encode(),
    )

    assert result.returncode == 0, _output(result)
    assert _objects(s3, deployed.out)["output/upper.txt"] == b"SENT ON STDIN\n"


def test_foreign_libraries_on_the_images_library_path_do_not_stop_the_binary(
    binary: Path, box: Box, function: Callable[[bytes, str], Function], s3: Any
) -> None:
    deployed = function(b"image libraries\n", "libs.txt")
    environment = {
        **deployed.environment,
        "EVENT": deployed.event("input/libs.txt"),
        "LD_LIBRARY_PATH": IMAGE_LIBRARY_PATH,
    }

    result = box.run(["/bin/sh", "-c", SCAR_COMMAND], environment, binds=SCAR_BIND)

    assert result.returncode == 0, _output(result)
    assert _objects(s3, deployed.out)["output/upper.txt"] == b"IMAGE LIBRARIES\n"


@pytest.mark.parametrize("library_path", [IMAGE_LIBRARY_PATH, None], ids=["set", "unset"])
def test_the_script_sees_the_images_own_library_path(
    binary: Path,
    box: Box,
    function: Callable[[bytes, str], Function],
    s3: Any,
    library_path: str | None,
) -> None:
    deployed = function(b"which libraries\n", "ld.txt")
    environment = {**deployed.environment, "EVENT": deployed.event("input/ld.txt")}
    if library_path is not None:
        environment["LD_LIBRARY_PATH"] = library_path

    result = box.run(["/bin/sh", "-c", SCAR_COMMAND], environment, binds=SCAR_BIND)

    assert result.returncode == 0, _output(result)
    seen = _objects(s3, deployed.out)["output/ld-library-path.txt"].decode()
    assert seen == (library_path if library_path is not None else "unset")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_reaches_the_job_through_both_loaders(
    binary: Path, tmp_path: Path, signum: int
) -> None:
    """Sent to the binary's outermost process (staticx's loader, then PyInstaller's
    bootloader), the signal reaches the job: the script and its child are gone, the work
    folder is removed, the exit code is 128 + the signal, no traceback."""
    pids = tmp_path / "pids"
    pids.mkdir()
    definition = {
        "name": "stoppable",
        "container": {"environment": {"Variables": {"PIDS": str(pids)}}},
    }
    work = tmp_path / "work"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TMPDIR": str(tmp_path),
        "FUNCTION_CONFIG": _b64(json.dumps(definition)),
        "SCRIPT": _b64(stop_signals.SCRIPT),
        "EVENT": "{}",
        "AWS_BATCH_JOB_ID": "binary-to-stop",
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        "SUPERVISOR_WORK_DIR": str(work),
    }
    process = subprocess.Popen(
        [str(binary)],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    script, child, out, err = stop_signals.stop(process, pids, signum)

    stop_signals.check_stopped(process, signum, script, child, out, err)
    assert list(work.glob("invocation-*")) == []
    # Both loaders removed what they unpacked.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pids", "work"]

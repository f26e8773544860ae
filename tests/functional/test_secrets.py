"""A script that goes after the supervisor's secrets finds none of them.

The supervisor is given recognisable fake secrets: the role's keys in its environment and a
storage provider's key in its definition.  The script runs ``secrets_probe.py``, which reads
``/proc/PID/{environ,cmdline,mem}`` of every process it can see, lists the supervisor's open
files and tries to attach to it with ptrace, and writes what it found.

- Lambda: the supervisor and the script run as one non-root user (here 65534, started from
  a root test with ``Popen(user=...)``).  A process of that user that the supervisor did not
  protect, holding a secret of its own, is found: the probe works.
- Batch: ``python -m supervisor`` runs as root under the job's ``sh -c`` shell, as Batch
  runs it; the script runs as ``nobody`` and still reads its input and writes its outputs.
  With ``script_user: root`` it runs as root, and then reads everything (the control).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.local_job import s3_event

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("secrets_probe.py")
NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start another user")

PROBE_SCRIPT = """\
"$PROBE_PYTHON" "$PROBE" "$PPID" "$REPORT"
"""

# What the Batch script checks of its folders as the unprivileged user.
BATCH_SCRIPT = """\
"$PROBE_PYTHON" "$PROBE" "$PPID" "$TMP_OUTPUT_DIR/report.json"
id -u > "$TMP_OUTPUT_DIR/uid.txt"
cat "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/copy.txt"
echo appended >> "$INPUT_FILE_PATH"
echo new > "$TMP_INPUT_DIR/new.txt"
echo scratch > "$TMPDIR/scratch.txt"
echo home > "$HOME/home.txt"
echo written > "$TMP_OUTPUT_DIR/sub.txt"
"""


@cache
def python_for_nobody() -> str | None:
    """A Python of this version that user 65534 can run (a virtual environment's may link
    to one in root's home)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            result = subprocess.run(
                [candidate, "-c", "import sys; print(tuple(sys.version_info[:2]))"],
                user=NOBODY,
                group=NOBODY,
                extra_groups=[],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.strip() == str(tuple(sys.version_info[:2])):
            return candidate
    return None


def packages_path() -> str:
    """This environment's packages and the repository, for that Python."""
    paths = sysconfig.get_paths()
    return ":".join(dict.fromkeys((str(REPO), paths["purelib"], paths["platlib"])))


@pytest.fixture
def python() -> str:
    found = python_for_nobody()
    if found is None:
        pytest.skip(f"no Python {sys.version_info[:2]} that user {NOBODY} can run")
    return found


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder that user 65534 can reach (pytest's own are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="secrets-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Secrets:
    """Fake secrets that all start with a marker that the probe rebuilds from two halves."""

    def __init__(self) -> None:
        self.head, self.tail = "PLANTED", uuid.uuid4().hex
        self.marker = self.head + self.tail

    def __getitem__(self, kind: str) -> str:
        return f"{self.marker}-{kind}"

    def probe_variables(self, python: str, **more: str) -> dict[str, str]:
        return {
            "MARKER_HEAD": self.head,
            "MARKER_TAIL": self.tail,
            "PROBE": str(PROBE),
            "PROBE_PYTHON": python,
            **more,
        }

    def role(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "ASIAPLANTEDKEY000001",
            "AWS_SECRET_ACCESS_KEY": self["role"],
            "AWS_SESSION_TOKEN": self["token"],
        }

    def storage(self) -> dict[str, Any]:
        return {
            "minio": {
                "store": {
                    "endpoint": "http://127.0.0.1:9",
                    "access_key": "planted-access",
                    "secret_key": self["storage"],
                }
            }
        }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# The Lambda runtime, in a process of its own: the handler for one direct invocation, with a
# process of the same user beside it that holds a secret and is not protected.
LAMBDA_DRIVER = """\
import json, subprocess, sys
from handlers import lambda_handler
from tests.functional.lambda_support import FakeLambdaContext

control = subprocess.Popen(["sleep", "300"], env={"CONTROL": sys.stdin.read()})
try:
    response = lambda_handler.handler({"probe": 1}, FakeLambdaContext("secrets", timeout_s=120))
finally:
    control.kill()
    control.wait()
print(json.dumps(response))
"""


def test_a_lambda_script_of_the_same_user_reads_no_secret_of_the_supervisor(
    folder: Path, python: str
) -> None:
    secrets = Secrets()
    os.chown(folder, NOBODY, NOBODY)
    script = folder / "process.sh"
    script.write_text(PROBE_SCRIPT)
    report = folder / "report.json"
    definition = {
        "name": "secrets",
        "init_script": str(script),
        "container": {
            "environment": {"Variables": secrets.probe_variables(python, REPORT=str(report))}
        },
        "storage_providers": secrets.storage(),
    }
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": packages_path(),
        "HOME": str(folder),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "secrets",
        "FDL": b64(json.dumps(definition)),
        "SUPERVISOR_WORK_DIR": str(folder / "work"),
        **secrets.role(),
    }

    result = subprocess.run(
        [python, "-c", LAMBDA_DRIVER],
        input=secrets["control"],
        env=environment,
        cwd=REPO,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["statusCode"] == 200
    found = json.loads(report.read_text())
    assert found["uid"] == NOBODY
    # The probe finds a secret in a process of its user that nobody protected ...
    assert any(line.endswith(secrets["control"]) for line in found["found"]), found
    # ... and none of the supervisor's, anywhere.
    assert [line for line in found["found"] if not line.endswith("-control")] == []
    access = found["access"]
    assert access["environ"] == "PermissionError"
    assert access["mem"].startswith("PermissionError")
    assert access["maps"] == access["fd"] == "PermissionError"
    assert access["ptrace"] != "attached"
    assert "lambda_handler" in found["supervisor_cmdline"]
    assert secrets.marker not in found["supervisor_cmdline"]
    _assert_no_inherited_files(found)


def _assert_no_inherited_files(found: dict[str, Any]) -> None:
    """The script's shell and the probe hold their output pipe, /dev/null, their own files."""
    for targets in found["fds"].values():
        for target in targets:
            assert target.startswith(("pipe:", "/dev/null", "/proc/")) or target.endswith(
                (".sh", "secrets_probe.py")
            ), targets


def run_batch_job(folder: Path, secrets: Secrets, python: str, **definition: Any) -> Path:
    """``sh -c 'echo $EVENT | python -m supervisor'`` as root, as a Batch job runs; return
    the output folder in the local storage."""
    storage, work = folder / "storage", folder / "work"
    (storage / "in" / "data").mkdir(parents=True)
    (storage / "in" / "data" / "photo.jpg").write_bytes(b"jpeg bytes\n")
    work.mkdir()
    work.chmod(0o755)
    function = {
        "name": "secrets-job",
        "container": {"environment": {"Variables": secrets.probe_variables(python)}},
        "input": [{"storage_provider": "s3", "path": "in/data"}],
        "output": [{"storage_provider": "s3", "path": "out/results"}],
        "storage_providers": secrets.storage(),
        **definition,
    }
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "HOME": "/root",
        "SUPERVISOR_TEST_PYTHON": sys.executable,
        "FUNCTION_CONFIG": b64(json.dumps(function)),
        "SCRIPT": b64(BATCH_SCRIPT),
        "EVENT": json.dumps(s3_event("in", "data/photo.jpg")),
        "AWS_BATCH_JOB_ID": f"job-{uuid.uuid4().hex[:8]}",
        "AWS_REGION": "us-east-1",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": f"/v2/credentials/{secrets['uri']}",
        **secrets.role(),
        "SUPERVISOR_STORAGE_ROOT": str(storage),
        "SUPERVISOR_WORK_DIR": str(work),
    }
    result = subprocess.run(
        ["/bin/sh", "-c", 'echo "$EVENT" | "$SUPERVISOR_TEST_PYTHON" -m supervisor'],
        env=environment,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(work.iterdir()), "the invocation's folder was left behind"
    return storage / "out" / "results"


def test_a_batch_script_runs_unprivileged_and_reads_no_secret_of_the_job(
    folder: Path, python: str
) -> None:
    secrets = Secrets()

    outputs = run_batch_job(folder, secrets, python)

    found = json.loads((outputs / "report.json").read_text())
    assert found["uid"] == NOBODY
    assert (outputs / "uid.txt").read_text().strip() == str(NOBODY)
    assert found["found"] == []
    assert found["access"]["environ"] == "PermissionError"
    assert found["access"]["mem"].startswith("PermissionError")
    assert found["access"]["ptrace"] != "attached"
    assert secrets.marker not in found["supervisor_cmdline"]
    _assert_no_inherited_files(found)
    # Its input, its output folder, TMPDIR and HOME are its own.
    assert (outputs / "copy.txt").read_bytes() == b"jpeg bytes\n"
    assert (outputs / "sub.txt").read_text() == "written\n"


def test_a_batch_script_with_script_user_root_runs_as_root_and_reads_everything(
    folder: Path, python: str
) -> None:
    secrets = Secrets()

    outputs = run_batch_job(folder, secrets, python, script_user="root")

    found = json.loads((outputs / "report.json").read_text())
    assert found["uid"] == 0
    assert (outputs / "uid.txt").read_text().strip() == "0"
    seen = " ".join(found["found"])
    # What the docs say a script run as root reaches: the role's keys, the definition.
    assert secrets["role"] in seen
    assert secrets["storage"] in seen
    assert found["access"]["ptrace"] == "attached"

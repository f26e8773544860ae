"""Nothing a script starts outlives its invocation, however it escapes, across warm invocations.

One process (``tests.functional.warm_driver``) makes warm invocations through the Lambda
handler against the moto server, as an unprivileged user when the tests run as root (in
Lambda, the runtime and the script run as one non-root user), and as this user.  For each
escape technique, an "attack" invocation leaves a daemon (``escape_daemon.py``) that
leaves its process group or session as the technique says and then, for as long as it
lives, copies every file of other invocations under the work folder to a loot folder and
plants a file in their output folders; the script waits until the daemon says it has
escaped, and exits.  The "victim" invocation that follows copies its input to its output.

What must hold: once an invocation has returned, no process of its script is alive (looked
up at that instant, without waiting); the victim saw no process of the attacker; nothing
was looted or planted; no script's output stayed open past its run.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.conftest import REGION

# One run of the driver makes all the invocations: the first test waits for it.
pytestmark = pytest.mark.timeout(400)

REPO = Path(__file__).resolve().parents[2]
DAEMON = Path(__file__).with_name("escape_daemon.py")
NOBODY = 65534

# technique -> (how the script starts the daemon, whether the daemon leaves the group)
TECHNIQUES: dict[str, tuple[str, bool]] = {
    "setsid": ("setsid $D setsid &", True),
    "nohup": ("nohup $D nohup > /dev/null 2>&1 &", False),
    "double-fork": ("( $D double-fork & ) &", False),
    "setsid-double-fork": ("( setsid $D setsid-double-fork & ) &", True),
    "env-i": ('env -i "$SETSID" $D env-i &', True),
    "unset": ("(unset TMP_OUTPUT_DIR; exec setsid $D unset) &", True),
    "changed-value": ("TMP_OUTPUT_DIR=/tmp/elsewhere setsid $D changed-value &", True),
    "python-setsid-execve": ("$D python-setsid-execve &", True),
    "ignores-signals": ("$D ignores-signals &", False),
    "setsid-ignores-signals": ("setsid $D ignores-signals &", True),
    "stopped": ("setsid $D stopped &", True),
    "fork-loop": ("setsid $D fork-loop &", True),
    "setpgid": ("$D setpgid &", True),
    "closes-output": ("setsid $D closes-output &", True),
    "keeps-output": ("setsid $D keeps-output &", True),
}

SCRIPT = """\
set -u
name=$(basename "$STORAGE_OBJECT_KEY" .bin)
technique=${name#*-}
state="$STATES/$technique"
own=$(dirname "$TMP_INPUT_DIR")
root=$(dirname "$own")
D="$PY $DAEMON $TAG $state $root $own"
case "$name" in
  victim-*)
    cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
    seen=""
    for proc in /proc/[0-9]*; do
      { tr '\\0' '\\n' < "$proc/cmdline"; } 2>/dev/null | grep -qxFf "$STATES/tag" || continue
      s=$(sed 's/.*) //' "$proc/stat" 2>/dev/null | cut -d' ' -f1) || continue
      [ "$s" = Z ] || [ "$s" = X ] || [ -z "$s" ] || seen="$seen ${proc#/proc/}"
    done
    echo "seen:$seen"
    ;;
  attack-*)
    case "$technique" in
%(cases)s
    esac
    n=0
    until ls "$state"/ready-* > /dev/null 2>&1; do
      n=$((n + 1))
      [ "$n" -lt 6000 ] || { echo "the daemon never said it escaped"; exit 9; }
      sleep 0.01
    done
    echo "script $(cut -d' ' -f5,6 /proc/$$/stat)"
    cat "$state"/ready-*
    ;;
esac
"""


def script() -> str:
    cases = "\n".join(f"      {name}) {line} ;;" for name, (line, _) in TECHNIQUES.items())
    return SCRIPT % {"cases": cases}


@dataclass
class DriverRun:
    user: str
    tag: str
    base: Path
    lines: list[dict[str, Any]]
    log: str
    keys: list[str]
    outputs: list[str]

    def invocation(self, key: str) -> dict[str, Any]:
        return self.lines[self.keys.index(key)]


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    record = {
        "eventSource": "aws:s3",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 64}},
    }
    return {"Records": [record]}


def drop_privileges() -> dict[str, Any]:
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []}


def interpreter_for(user: str) -> tuple[str, str]:
    """A Python that ``user`` can run with this project importable, and its PYTHONPATH.

    This one, unless it lives where an unprivileged user cannot reach it (under /root):
    then the system's Python of the same version, with this environment's packages."""
    path = os.pathsep.join([sysconfig.get_paths()["purelib"], str(REPO)])
    if user != "unprivileged":
        return sys.executable, path
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import handlers.lambda_handler"],
                cwd=REPO,
                env={"PATH": os.environ["PATH"], "PYTHONPATH": path},
                capture_output=True,
                check=False,
                **drop_privileges(),
            )
        except OSError:
            continue
        if probe.returncode == 0:
            return candidate, path
    pytest.skip(f"no {version} that user {NOBODY} can run with this project's packages")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("unprivileged", id="as-nobody"),
        pytest.param("this-user", id="as-this-user"),
    ],
)
def driver_run(request: pytest.FixtureRequest, moto_server: str) -> Iterator[DriverRun]:
    user: str = request.param
    if user == "unprivileged" and os.geteuid() != 0:
        pytest.skip("dropping to an unprivileged user needs root; as-this-user runs instead")
    python, python_path = interpreter_for(user)
    tag = f"escape-{uuid.uuid4().hex}"
    base = Path(tempfile.mkdtemp(prefix="escapes-"))
    aws = {
        "AWS_ACCESS_KEY_ID": "AKIAMOTOTESTKEY00001",
        "AWS_SECRET_ACCESS_KEY": "moto-secret-access-key-do-not-log",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name=REGION,
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
    )
    source, out = f"escape-in-{tag[-12:]}", f"escape-out-{tag[-12:]}"
    s3.create_bucket(Bucket=source)
    s3.create_bucket(Bucket=out)
    states = base / "states"
    states.mkdir()
    (states / "tag").write_text(tag + "\n")
    keys: list[str] = []
    for technique in TECHNIQUES:
        (states / technique).mkdir(parents=True)
        for role in ("attack", "victim"):
            key = f"incoming/{role}-{technique}.bin"
            s3.put_object(Bucket=source, Key=key, Body=f"secret input of {key}\n".encode())
            keys.append(key)
    (base / "function").mkdir()
    (base / "function" / "process.sh").write_text(script())
    definition = {
        "name": "escapes",
        "execution_mode": "lambda",
        "init_script": str(base / "function" / "process.sh"),
        "output": [{"path": f"{out}/results"}],
        "container": {
            "timeout_threshold": 5,
            "environment": {
                "Variables": {
                    "STATES": str(states),
                    "PY": python,
                    "DAEMON": str(DAEMON),
                    "TAG": tag,
                    "SETSID": shutil.which("setsid") or "/usr/bin/setsid",
                }
            },
        },
    }
    (base / "events.json").write_text(json.dumps([s3_event(source, key) for key in keys]))
    environment = {
        **aws,
        "PATH": os.environ["PATH"],
        "HOME": str(base),
        "FDL": base64.b64encode(yaml.safe_dump(definition).encode()).decode(),
        "SUPERVISOR_WORK_DIR": str(base / "work"),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": python_path,
        "ESCAPE_TAG": tag,
    }
    options: dict[str, Any] = {}
    if user == "unprivileged":
        for path in (base, *base.rglob("*")):
            os.chown(path, NOBODY, NOBODY)
        options = drop_privileges()
    try:
        completed = subprocess.run(
            [
                python,
                "-m",
                "tests.functional.warm_driver",
                str(base / "events.json"),
                str(base / "results.jsonl"),
            ],
            cwd=REPO,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            **options,
        )
        log = completed.stdout + completed.stderr
        assert completed.returncode == 0, log[-5000:]
        lines = [json.loads(line) for line in (base / "results.jsonl").read_text().splitlines()]
        listed = s3.list_objects_v2(Bucket=out).get("Contents", [])
        yield DriverRun(user, tag, base, lines, log, keys, [item["Key"] for item in listed])
    finally:
        for pid in tagged_alive(tag):
            os.kill(pid, 9)
        shutil.rmtree(base, ignore_errors=True)


def tagged_alive(tag: str) -> list[int]:
    from tests.functional.warm_driver import tagged_alive as lookup

    return lookup(tag.encode())


def body(line: dict[str, Any]) -> str:
    return base64.b64decode(line["response"]["body"]).decode()


@pytest.mark.slow
@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_the_daemon_escaped_and_died_with_its_invocation(
    driver_run: DriverRun, technique: str
) -> None:
    attack = driver_run.invocation(f"incoming/attack-{technique}.bin")
    assert attack["response"]["statusCode"] == 200, attack

    said = body(attack).split("\n")
    script_pgid, script_sid = (int(field) for field in said[0].removeprefix("script ").split())
    daemon = said[1].split()
    daemon_sid, daemon_pgid = int(daemon[1]), int(daemon[2])
    leaves_group = TECHNIQUES[technique][1]
    assert (daemon_pgid != script_pgid) == leaves_group, said
    if technique != "setpgid":
        assert (daemon_sid != script_sid) == leaves_group, said
    assert attack["alive"] == [], f"{technique}: processes outlived their invocation"


@pytest.mark.slow
@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_the_next_invocation_is_untouched(driver_run: DriverRun, technique: str) -> None:
    victim = driver_run.invocation(f"incoming/victim-{technique}.bin")

    assert victim["response"]["statusCode"] == 200, victim
    assert body(victim) == "seen:\n"
    assert victim["alive"] == []
    assert not list((driver_run.base / "states" / technique / "loot").iterdir())


@pytest.mark.slow
def test_nothing_was_planted_left_open_or_left_alive(driver_run: DriverRun) -> None:
    victims = sorted(f"results/victim-{technique}.bin" for technique in TECHNIQUES)

    assert sorted(driver_run.outputs) == victims
    assert "still open" not in driver_run.log
    assert "left behind by script" in driver_run.log
    assert tagged_alive(driver_run.tag) == []
    recorded = [
        int(pid)
        for pids in (driver_run.base / "states").glob("*/pids")
        for pid in pids.read_text().split()
    ]
    assert len(recorded) > len(TECHNIQUES) + 10, "the fork loop forked"

"""Warm invocations: nothing of one is visible to the next, and nothing grows.

One process, one built supervisor, 200 invocations through the Lambda handler in
``lambda`` mode against the moto server: each downloads a small object, and its script
copies it to the output.  Every tenth object is "dirty": its script exports a variable,
writes files to ``$TMPDIR`` and beside its folders, keeps a descriptor open, and leaves
background processes behind: one in its process group, one under ``nohup``, one that
escapes the group with ``setsid`` and one that also clears its environment (``env -i``).
When the handler returns, none of them is alive, looked up at once.  Each script reports
what it can see of an earlier one (the variable, the files, a live process from the list
of pids) or of the supervisor (an inherited socket, such as the S3 client's connections);
every report must be empty (a zombie, dead and not yet reaped, is not alive).  After a
warm-up of ten invocations the process's open file descriptors and threads must not
grow, its resident memory must grow by less than 5 MiB, and at the end the work folder
is empty and no process left by a script is alive.
"""

from __future__ import annotations

import base64
import gc
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from handlers import lambda_handler
from tests.functional.lambda_support import install_function

INVOCATIONS = 200
WARM_UP = 10
DIRTY_EVERY = 10
MAX_RSS_GROWTH_KIB = 5 * 1024
DURATION = f"300.{uuid.uuid4().int % 1000:03d}"

SCRIPT = f"""\
set -u
seen=""
[ -n "${{ISOLATION_MARK+x}}" ] && seen="$seen variable"
[ -e "$TMPDIR/isolation-mark" ] && seen="$seen tmpdir-file"
[ -e "$TMP_INPUT_DIR/../isolation-mark" ] && seen="$seen work-file"
[ "$(ls -A "$TMP_INPUT_DIR")" = "$(basename "$INPUT_FILE_PATH")" ] || seen="$seen input-files"
[ -z "$(ls -A "$TMP_OUTPUT_DIR")" ] || seen="$seen output-files"
for pidfile in "$PIDS"/*.pid; do
  [ -e "$pidfile" ] || continue
  state=$(cut -d' ' -f3 "/proc/$(cat "$pidfile")/stat" 2>/dev/null) || continue
  [ "$state" = Z ] || [ "$state" = X ] || seen="$seen process"
done
for fd in /proc/$$/fd/*; do
  case "$(readlink "$fd")" in socket:*) seen="$seen socket-${{fd##*/}}" ;; esac
done
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
echo "seen:$seen"
case "$STORAGE_OBJECT_KEY" in
  *dirty*)
    export ISOLATION_MARK=1
    echo mark > "$TMPDIR/isolation-mark"
    echo mark > "$TMP_INPUT_DIR/../isolation-mark"
    exec 9> "$TMPDIR/held-open"
    sleep {DURATION} &
    echo $! > "$PIDS/group-$$.pid"
    nohup sleep {DURATION} > /dev/null 2>&1 &
    echo $! > "$PIDS/nohup-$$.pid"
    setsid sleep {DURATION} &
    echo $! > "$PIDS/setsid-$$.pid"
    env -i /bin/sh -c 'setsid sleep "$1" & echo $! > "$2"' - {DURATION} "$PIDS/env-i-$$.pid"
    ;;
esac
"""


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def left_behind() -> list[int]:
    """Processes whose command line holds this module's sleep duration."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                line = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if DURATION.encode() in line.split(b"\0") and alive(int(entry)):
                found.append(int(entry))
    return found


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    record = {
        "eventSource": "aws:s3",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 256}},
    }
    return {"Records": [record]}


@pytest.mark.slow
def test_two_hundred_warm_invocations_leave_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    aws_env: dict[str, str],
    s3: Any,
    make_bucket: Any,
) -> None:
    source, out = make_bucket("warm-in"), make_bucket("warm-out")
    clean, dirty = os.urandom(256), os.urandom(256)
    s3.put_object(Bucket=source, Key="incoming/clean.bin", Body=clean)
    s3.put_object(Bucket=source, Key="incoming/dirty.bin", Body=dirty)
    pids = tmp_path / "pids"
    pids.mkdir()
    function = install_function(
        monkeypatch,
        tmp_path,
        SCRIPT,
        {
            "output": [{"path": f"{out}/results"}],
            "container": {"environment": {"Variables": {"PIDS": str(pids)}}},
        },
    )
    events = {
        "clean": s3_event(source, "incoming/clean.bin"),
        "dirty": s3_event(source, "incoming/dirty.bin"),
    }
    reports: list[str] = []
    samples: dict[str, tuple[int, int, int]] = {}
    started = time.monotonic()

    for number in range(1, INVOCATIONS + 1):
        kind = "dirty" if number % DIRTY_EVERY == 0 else "clean"
        response = lambda_handler.handler(events[kind], function.context())
        assert response["statusCode"] == 200, response
        reports.append(base64.b64decode(response["body"]).decode())
        if kind == "dirty":
            written = sorted(pids.glob("*.pid"))
            assert written, "the dirty script ran"
            for pidfile in written:
                pid = int(pidfile.read_text())
                assert not alive(pid), f"{pidfile.name}: the process outlived its invocation"
        if number in (WARM_UP, INVOCATIONS):
            gc.collect()
            samples["before" if number == WARM_UP else "after"] = (
                open_fds(),
                threading.active_count(),
                rss_kib(),
            )
    elapsed = time.monotonic() - started

    fds, threads, rss = zip(samples["before"], samples["after"], strict=True)
    print(
        f"{INVOCATIONS} invocations in {elapsed:.1f} s; fds {fds}, threads {threads}, RSS {rss} KiB"
    )
    assert [report for report in reports if report != "seen:\n"] == []
    assert len(list(pids.glob("*.pid"))) == 4 * (INVOCATIONS // DIRTY_EVERY)
    assert fds[1] <= fds[0], f"open file descriptors grew from {fds[0]} to {fds[1]}"
    assert threads[1] <= threads[0], f"threads grew from {threads[0]} to {threads[1]}"
    assert rss[1] - rss[0] < MAX_RSS_GROWTH_KIB, f"RSS grew by {rss[1] - rss[0]} KiB"
    assert list(function.work_dir.iterdir()) == []
    assert left_behind() == []
    landed = s3.list_objects_v2(Bucket=out)["Contents"]
    assert sorted(item["Key"] for item in landed) == ["results/clean.bin", "results/dirty.bin"]

"""What a run measures and with what: the plans, the constants, the scripts and the notes."""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent
DRIVERS = BENCH / "drivers"
THEIRS_VENV = BENCH / ".venv-theirs"
THEIRS_VERSION = "1.5.8"
# faas-supervisor's own requirements, less its malformed one (webdavclient3 + requests).
THEIRS_DEPS = ("pyyaml", "requests", "setuptools", "webdavclient3==3.14.6")

FUNCTION = "bench-fn"  # function name = Batch job queue = job definition (both read it so)
REGION = "us-east-1"
IN_BUCKET = "bench-in"
OUT_BUCKET = "bench-out"
KIB = 1024
MIB = 1024 * KIB
RESERVE = 2.0  # container.timeout_threshold of every function, both implementations
WATCHDOG_DEADLINE = 6.0
CONCURRENCY = 10  # raw parallel puts: threads and connections (ours' pool is 10 too)
PROXY_DELAY = 0.02
# Case 5's S3-like endpoint: MiB/s per connection and direction, as one S3 connection moves.
BIG_BANDWIDTH = 50.0
LAMBDA_TIMEOUT = 600.0  # the Lambda timeout of cases 1 to 5: large, nothing should time out
FAKE_IMAGE = "bench-plain"
LAMBDA_RUNTIME = f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"

# Each driver's warm-up call is an event for incoming/warmup.bin: the script does nothing much.
WARMUP_GUARD = (
    'case "$STORAGE_OBJECT_KEY" in *warmup*)'
    ' echo warm > "$TMP_OUTPUT_DIR/warm.txt"; exit 0;; esac\n'
)
SCRIPTS = {
    "copy": WARMUP_GUARD + 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n',
    # Hard links: the files appear in a few milliseconds (a copy of 1,100 files can take a
    # second on a fresh ext4 folder, which would hide what the uploads cost).
    "many": WARMUP_GUARD
    + 'cp -al "$SOURCE_DIR/." "$TMP_OUTPUT_DIR/" 2>/dev/null'
    + ' || cp -R "$SOURCE_DIR/." "$TMP_OUTPUT_DIR/"\n',
    "big": WARMUP_GUARD
    + 'ln "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/big.out" 2>/dev/null'
    + ' || cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/big.out"\n',
    # Case 7: the same lines to stdout (logged) or to /dev/null.
    "chatty": WARMUP_GUARD + 'cat "$CHATTY_FILE"\n',
    "silent": WARMUP_GUARD + 'cat "$CHATTY_FILE" > /dev/null\n',
    "sleeper": WARMUP_GUARD.replace('echo warm > "$TMP_OUTPUT_DIR/warm.txt"; ', "")
    + 'echo $$ > "$PIDFILE"\nsleep 300 &\necho $! >> "$PIDFILE"\nsleep 300\n',
}

# How faas-supervisor is driven, and what is not like for like (written to the JSON, printed).
NOTES = (
    "theirs runs a plain script only in the Lambda image runtime (AWS_Lambda_Image): cases 3 to "
    "5 and 7 use that; ours uses its zip-runtime handler, which runs a plain /bin/sh process too.",
    "theirs delegates (batch mode, lambda-batch on timeout) only in the zip runtime, where it "
    "always runs udocker: cases 1, 2 and 6 use that, with bench/drivers/fake_udocker.sh as "
    "UDOCKER_EXEC (exec /bin/sh SCRIPT: no udocker, no proot, which favours theirs).",
    "theirs' watchdog waits int(remaining s) - int(timeout_threshold) seconds, then SIGKILLs the "
    "script process alone (not its group): with a 6 s Lambda it kills about 1 s early.",
    "case 4 behind the proxy: theirs runs once (about 30 s a run), the other sides 5 times.",
    "case 7: theirs logs the script's output only at DEBUG (the run logs at INFO), and returns "
    "it whole in the response body, which Lambda refuses above 6 MB; ours logs every line and "
    "returns the last 4 MiB.",
    "both get the same definition in FDL (base64 JSON), log at INFO to a file, use the same "
    "Python and boto3, and start with -S and PYTHONPATH (--site: with site processing).",
)


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and where its log is."""


class LimitHit(BenchError):
    """Under a Lambda memory size, a driver was OOM-killed or ran out of time: a result of
    that size, reported as such, not a failure of the benchmark."""


def failure(exc: BenchError) -> dict[str, Any]:
    """What a side that failed records: the message, and whether it hit a size's limit."""
    return {"error": str(exc), "limit": True} if isinstance(exc, LimitHit) else {"error": str(exc)}


@dataclass(frozen=True)
class Plan:
    """How much of each case to run."""

    cold_reps: int
    batch_calls: int
    small_calls: int
    many_top: int  # files in the output folder itself
    many_sub: int  # and in a subfolder
    many_reps: int
    many_reps_slow: int  # theirs behind the proxy: about 30 s a run at full size
    big_mib: int
    big_reps: int
    watchdog_reps: int
    chatty_mib: int
    chatty_reps: int


FULL = Plan(11, 50, 30, 1000, 100, 5, 1, 200, 3, 3, 100, 3)
QUICK = Plan(3, 10, 5, 100, 10, 1, 1, 16, 1, 1, 16, 1)
# Case 7's output: lines like a video encoder's progress log, 100 bytes each.
CHATTY_LINE = (
    "frame=%8d fps= 25 q=28.0 size=%8dkB time=00:00:05.00 bitrate=1677.7kbits/s speed=1.0x\n"
)


@dataclass(frozen=True)
class Impl:
    name: str
    python: str
    driver: Path
    module: str  # the handler module a Lambda imports
    path: str = ""  # when set: start with -S (no site, no .pth files) and this PYTHONPATH

    def command(self, *args: str) -> list[str]:
        return [self.python, "-S", *args] if self.path else [self.python, *args]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def s3_event(bucket: str, key: str, size: int) -> dict[str, Any]:
    """An S3 "object created" notification, as S3 sends it to Lambda."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-01-01T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:BENCH"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "BENCH", "x-amz-id-2": "BENCH"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "bench",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "BENCH"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {"key": key, "size": size, "eTag": "0", "sequencer": "0"},
                },
            }
        ]
    }

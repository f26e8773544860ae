"""The local demo: two uploads through a lambda-batch function on local storage.

The small file finishes inside the 4-second "Lambda" deadline; the big one does not,
is handed to the local Batch backend and finished there.  Run it with ./build.sh demo.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = Path.cwd() / "demo-output"
STORAGE = OUT / "storage"
TIMEOUT = 4


def s3_event(bucket: str, key: str, size: int) -> dict[str, object]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventTime": "2026-11-28T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}},
            }
        ]
    }


def upload(name: str, size: int) -> Path:
    words = b"the quick brown fox jumps over the lazy dog\n"
    path = STORAGE / "uploads" / "incoming" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((words * (size // len(words) + 1))[:size])
    event = OUT / f"{name}.event.json"
    event.write_text(json.dumps(s3_event("uploads", f"incoming/{name}", size), indent=2))
    return event


def invoke(event: Path) -> dict[str, object]:
    command = [
        sys.executable, "-m", "supervisor", "run",
        "--config", str(HERE / "function.yaml"),
        "--event", str(event),
        "--storage-root", str(STORAGE),
        "--timeout", str(TIMEOUT),
        "--work-dir", str(OUT / "work"),
        "--json",
    ]  # fmt: skip
    print(f"\n$ python -m supervisor run --event {event.name} --timeout {TIMEOUT} ...", flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the invocation failed (exit {done.returncode})")
    report: dict[str, object] = json.loads(done.stdout)
    return report


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    small = upload("small.txt", 20 * 1024)
    big = upload("big.txt", 700 * 1024)
    print("Uploaded small.txt (20 KiB, ~0 s of work) and big.txt (700 KiB, ~7 s of work)")
    print(f"into {STORAGE}/uploads/incoming; the function's deadline is {TIMEOUT} s.")
    for event in (small, big):
        report = invoke(event)
        for record in report["records"]:  # type: ignore[attr-defined]
            if record["status"] == "delegated":
                print(
                    f"  {record['key']}: {record['reason']} -> delegated to Batch job "
                    f"{record['job_id']}"
                )
            else:
                print(
                    f"  {record['key']}: {record['status']} in Lambda, uploaded "
                    f"{', '.join(record['uploaded'])}"
                )
        for job in report["jobs"]:  # type: ignore[attr-defined]
            print(f"  Batch job {job['job_id']} exited {job['exit_code']} (log: {job['log']})")
    print("\nResults (routed by suffix: .txt -> results/text, .json -> results/stats):")
    for path in sorted((STORAGE / "results").rglob("*")):
        if path.is_file():
            print(f"  {path}  ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

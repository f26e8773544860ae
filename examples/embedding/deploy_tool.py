"""How a deployment tool embeds the supervisor: check a function before deploying it, then
try it on this machine, with the tool's own Batch backend.

    python examples/embedding/deploy_tool.py [WORK_FOLDER]

It checks ``function.yaml`` beside this file (a ``lambda-batch`` function), uploads two
files to a folder that plays the input bucket, and invokes the function for each with the
S3 notification a bucket sends.  The small file finishes "in Lambda"; the large one runs
past the 3-second deadline and is handed to Batch, which here is the tool's own backend:
it prints the SubmitJob request it would send instead of sending it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote_plus

import supervisor
from supervisor.deadline import Deadline

HERE = Path(__file__).resolve().parent


class PrintingBackend:
    """A ``supervisor.Backend``: where this tool would submit a job, it shows the request."""

    def __init__(self) -> None:
        self.requests: list[supervisor.JobRequest] = []

    def prepare(self) -> None:
        """Nothing to connect to: a real tool would create its Batch client here."""

    def submit(self, job: supervisor.JobRequest, deadline: Deadline) -> str:
        """Take the job; a real tool would submit it before ``deadline.remaining()`` runs out."""
        self.requests.append(job)
        names = ", ".join(name for name, _ in job.environment)
        print(f"  would submit job {job.job_name} to queue {job.job_queue} ({names})")
        return f"job-{len(self.requests)}"


def notification(bucket: str, key: str) -> dict[str, object]:
    """The S3 event a bucket sends when ``key`` is written (the key URL-encoded)."""
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
    }
    return {"Records": [record]}


def main(argv: list[str]) -> int:
    work = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="embedding-"))
    storage = work / "storage"
    environ = dict(os.environ)

    # 1. Check the definition as the tool reads it, before deploying anything.
    try:
        definition = supervisor.load(environ, path=HERE / "function.yaml")
    except supervisor.ConfigError as exc:
        print(f"cannot deploy: {exc}", file=sys.stderr)
        return 2
    config = definition.config
    print(f"{config.name}: {config.execution_mode}, reserve {config.timeout_threshold:g} s")

    # 2. Build the runtime once, with the tool's backend, on local storage.
    backend = PrintingBackend()
    runtime = supervisor.start(
        definition,
        environ,
        platform="local",
        work_root=work / "work",
        storage_root=storage,
        backend=backend,
    )

    # 3. Invoke it per upload, as Lambda would, with a deadline.
    inbox = storage / "uploads" / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "small note.txt").write_text("a few words\n")
    (inbox / "big.txt").write_text("many words\n" * 4000)
    failed = False
    for key in ("in/small note.txt", "in/big.txt"):
        context = supervisor.InvocationContext.local(config.name, timeout=3)
        try:
            outcome = runtime.invoke(notification("uploads", key), context)
        except supervisor.SupervisorError as exc:
            print(f"{key}: error: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"{key}: {outcome.status}")
        for record in outcome.records:
            for uri in record.uploaded:
                print(f"  uploaded {uri}")
        failed = failed or outcome.status == "failed"
    summary = [job.job_name for job in backend.requests]
    print(json.dumps({"jobs": summary, "storage": str(storage)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

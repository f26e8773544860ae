"""The floor of the cold-start case: what any botocore-based supervisor must do.

Run by ``bench/run.py`` like a driver, but with no handler: it imports botocore, creates
one Batch client and submits one job carrying the event, the least that a ``batch``-mode
invocation needs.  It reads the driver parameters (``case`` = ``invoke``) on stdin and
writes ``returned_at`` and ``job_ids`` like ``common.invoke``; ``init_s`` is the import and
the client (what a handler module would do at import), ``seconds`` the SubmitJob call.
Under a Lambda memory size it moves itself into the runner's cgroup between the two.

With ``pydantic`` true in the parameters it is the "floor + pydantic" of the same case: it
also runs ``from pydantic import BaseModel`` during its init (pydantic's import, what any
validation with pydantic models costs before the first model is built), and reports the
file pydantic was imported from as ``pydantic_file``.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    params = json.loads(sys.stdin.read())
    start = time.perf_counter()
    pydantic_file = _import_pydantic() if params.get("pydantic") else None
    import botocore.session

    client = botocore.session.get_session().create_client("batch")
    init_s = time.perf_counter() - start
    moved = {}
    if params.get("cgroup"):
        from common import enter_cgroup  # only here: its imports would weigh on the floor

        moved = enter_cgroup(params["cgroup"])
    start = time.perf_counter()
    job = client.submit_job(
        jobName=params["function_name"],
        jobQueue=params["function_name"],
        jobDefinition=params["function_name"],
        containerOverrides={
            "environment": [{"name": "EVENT", "value": json.dumps(params["event"])}]
        },
    )
    seconds = time.perf_counter() - start
    result = {
        "returned_at": [time.monotonic()],
        "job_ids": [job["jobId"]],
        "init_s": init_s,
        "seconds": [seconds],
        "cgroup": moved,
    }
    if pydantic_file is not None:
        result["pydantic_file"] = pydantic_file
    json.dump(result, sys.stdout)


def _import_pydantic() -> str:
    """Import pydantic as a validation with its models does first; the file it came from."""
    from pydantic import BaseModel  # noqa: F401 (the import is what is measured)

    return str(sys.modules["pydantic"].__file__)


if __name__ == "__main__":
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    main()

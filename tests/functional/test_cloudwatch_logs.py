"""A Batch job's log lines reach CloudWatch Logs (a moto server), in order and redacted."""

from __future__ import annotations

import io
import logging
import os
import uuid

import boto3

from supervisor import logs


def test_batch_job_lines_reach_cloudwatch_redacted(aws_env: dict[str, str]) -> None:
    secret = aws_env["AWS_SECRET_ACCESS_KEY"]
    secrets = logs.secrets_from_environ(os.environ)
    group = f"/aws/batch/job-test-{uuid.uuid4().hex[:12]}"
    stderr = io.StringIO()
    logs.configure_cli("INFO", secrets=secrets, stream=stderr)

    handle = logs.attach_cloudwatch(group, "job-1234", secrets=secrets)
    log = logging.getLogger("supervisor.runtime")
    log.info("stage in %s", "bucket/in/file.txt")
    log.warning("script exited with %d", 3)
    logging.getLogger("batch_entrypoint.main").info("credentials %s", secret)
    handle.close()
    handle.close()
    log.info("after close")

    client = boto3.client("logs")
    events = client.get_log_events(logGroupName=group, logStreamName="job-1234", startFromHead=True)
    assert [event["message"] for event in events["events"]] == [
        "INFO supervisor.runtime: stage in bucket/in/file.txt",
        "WARNING supervisor.runtime: script exited with 3",
        "INFO batch_entrypoint.main: credentials ***",
    ]
    assert handle.handler not in logging.getLogger().handlers
    assert "after close" in stderr.getvalue()
    assert secret not in stderr.getvalue()

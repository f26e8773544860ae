"""build_job: the SubmitJob request that hands an invocation to AWS Batch, as Batch reads it."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from supervisor.config import FunctionConfig
from supervisor.context import InvocationContext
from supervisor.deadline import Deadline
from supervisor.delegation import MAX_REQUEST_BYTES, JobRequest, build_job
from supervisor.errors import DelegationError

KIB = 1024
REQUEST_ID = "8f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"
CONTEXT = InvocationContext(
    request_id=REQUEST_ID,
    function_name="word-stats",
    memory_limit_in_mb=1024,
    log_group_name="/aws/lambda/word-stats",
    log_stream_name="2026/11/28/[$LATEST]0123456789abcdef",
    deadline=Deadline(123.0),
)
EVENT = json.dumps({"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "a b.txt"}}}]})
SCRIPT = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
# What AWS Batch accepts as a job name (and what moto checks on SubmitJob).
VALID_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def config(**fields: Any) -> FunctionConfig:
    return FunctionConfig.model_validate({"name": "word-stats", **fields})


def overrides(job: JobRequest) -> dict[str, str]:
    """The environment overrides as Batch receives them in the request."""
    request = job.submit_kwargs()
    if "containerOverrides" in request:
        entries = request["containerOverrides"]["environment"]
    else:
        (node,) = request["nodeOverrides"]["nodePropertyOverrides"]
        entries = node["containerOverrides"]["environment"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), f"duplicate variables: {names}"
    return {entry["name"]: entry["value"] for entry in entries}


def request_bytes(job: JobRequest) -> int:
    """The request body size measured here, independently of ``JobRequest.size``."""
    return len(json.dumps(job.submit_kwargs()).encode())


class EventStore:
    """A ``store_event`` that remembers what it was given."""

    def __init__(self, uri: str = "s3://events-bucket/.supervisor-events/e1.json") -> None:
        self.uri = uri
        self.stored: list[str] = []

    def __call__(self, event_json: str) -> str:
        self.stored.append(event_json)
        return self.uri


def test_the_job_carries_the_event_the_context_and_the_request_id() -> None:
    job = build_job(config(), CONTEXT, EVENT)

    environment = overrides(job)
    assert set(environment) == {"EVENT", "CONTEXT", "AWS_LAMBDA_REQUEST_ID"}
    assert environment["EVENT"] == EVENT
    assert environment["AWS_LAMBDA_REQUEST_ID"] == REQUEST_ID
    assert json.loads(environment["CONTEXT"]) == {
        "function_name": "word-stats",
        "memory_limit_in_mb": 1024,
        "aws_request_id": REQUEST_ID,
        "log_group_name": "/aws/lambda/word-stats",
        "log_stream_name": "2026/11/28/[$LATEST]0123456789abcdef",
    }
    assert "nodeOverrides" not in job.submit_kwargs()


@pytest.mark.parametrize(
    ("script", "expected"),
    [(SCRIPT, SCRIPT), (None, None), ("", None)],
    ids=["given", "none", "empty"],
)
def test_script_is_passed_only_when_given(script: str | None, expected: str | None) -> None:
    environment = overrides(build_job(config(), CONTEXT, EVENT, script=script))

    assert environment.get("SCRIPT") == expected


@pytest.mark.parametrize(
    ("batch", "queue", "definition"),
    [
        ({}, "word-stats", "word-stats"),
        ({"job_queue": "gpu-queue"}, "gpu-queue", "word-stats"),
        ({"job_definition": "word-stats-gpu:3"}, "word-stats", "word-stats-gpu:3"),
        ({"job_queue": "q", "job_definition": "d"}, "q", "d"),
    ],
    ids=["defaults", "queue", "definition", "both"],
)
def test_queue_and_definition_default_to_the_function_name(
    batch: dict[str, str], queue: str, definition: str
) -> None:
    request = build_job(config(batch=batch), CONTEXT, EVENT).submit_kwargs()

    assert request["jobQueue"] == queue
    assert request["jobDefinition"] == definition


def test_multi_node_jobs_put_the_environment_under_the_node_overrides() -> None:
    single = build_job(config(), CONTEXT, EVENT, script=SCRIPT)
    multi = build_job(
        config(batch={"multi_node_parallel": {"enabled": True}}), CONTEXT, EVENT, script=SCRIPT
    )

    request = multi.submit_kwargs()
    assert "containerOverrides" not in request
    (node,) = request["nodeOverrides"]["nodePropertyOverrides"]
    assert node["targetNodes"] == "0:"
    assert (
        node["containerOverrides"]["environment"]
        == (single.submit_kwargs()["containerOverrides"]["environment"])
    )
    assert overrides(multi)["EVENT"] == EVENT


@pytest.mark.parametrize("multi_node", [False, True], ids=["container", "multi-node"])
@pytest.mark.parametrize("event_size", [1 * KIB, 40 * KIB], ids=["inline", "stored"])
def test_no_variable_name_starts_with_aws_batch(multi_node: bool, event_size: int) -> None:
    function = config(batch={"multi_node_parallel": {"enabled": multi_node}})
    event = json.dumps({"data": "x" * event_size})

    job = build_job(function, CONTEXT, event, script=SCRIPT, store_event=EventStore())

    assert [name for name in overrides(job) if name.upper().startswith("AWS_BATCH")] == []


@pytest.mark.parametrize(
    ("event_size", "stored"),
    [(1 * KIB, False), (28 * KIB, False), (30 * KIB, True), (40 * KIB, True), (250 * KIB, True)],
    ids=["1KiB", "28KiB", "30KiB", "40KiB", "250KiB"],
)
@pytest.mark.parametrize("multi_node", [False, True], ids=["container", "multi-node"])
def test_an_event_too_large_for_the_request_goes_by_reference(
    event_size: int, stored: bool, multi_node: bool
) -> None:
    event = json.dumps({"Records": [], "padding": "p" * event_size})
    store = EventStore()
    function = config(batch={"multi_node_parallel": {"enabled": multi_node}})

    job = build_job(function, CONTEXT, event, script=SCRIPT, store_event=store)

    environment = overrides(job)
    assert request_bytes(job) <= MAX_REQUEST_BYTES
    assert environment["AWS_LAMBDA_REQUEST_ID"] == REQUEST_ID
    assert environment["SCRIPT"] == SCRIPT
    assert json.loads(environment["CONTEXT"])["aws_request_id"] == REQUEST_ID
    if stored:
        assert store.stored == [event]
        assert environment["EVENT_URI"] == store.uri
        assert "EVENT" not in environment
    else:
        assert store.stored == []
        assert environment["EVENT"] == event
        assert "EVENT_URI" not in environment


def test_an_oversized_event_with_nowhere_to_store_it_is_a_delegation_error() -> None:
    event = json.dumps({"padding": "p" * (40 * KIB)})

    with pytest.raises(DelegationError, match="event_store"):
        build_job(config(), CONTEXT, event)


def test_a_script_too_large_for_the_request_is_a_delegation_error() -> None:
    script = base64.b64encode(b"#" * (32 * KIB)).decode()
    store = EventStore()

    with pytest.raises(DelegationError, match="script"):
        build_job(config(), CONTEXT, EVENT, script=script, store_event=store)


@pytest.mark.parametrize(
    "function_name",
    [
        "word-stats",
        "word_stats_2",
        "scar.fn:prod",
        "función con espacios",
        "f" * 200,
        "_resize",
        "-thumbnails",
        "fn/with/slashes",
    ],
    ids=[
        "plain",
        "underscores",
        "dots-colon",
        "unicode-spaces",
        "long",
        "underscore-first",
        "hyphen-first",
        "slashes",
    ],
)
@pytest.mark.parametrize(
    "request_id", [REQUEST_ID, "local run #7 é"], ids=["uuid", "odd-request-id"]
)
def test_job_names_are_valid_batch_job_names(function_name: str, request_id: str) -> None:
    context = InvocationContext(request_id=request_id, function_name=function_name)

    job = build_job(config(name=function_name), context, EVENT)

    name = job.submit_kwargs()["jobName"]
    assert len(name) <= 128
    assert VALID_JOB_NAME.fullmatch(name), name

"""Sample events: shaped as the recorded ones in tests/events, and read back by the parser
as the object or request they were made for."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from supervisor import events
from supervisor.sample_events import KINDS, OBJECT_KINDS, Sample, generate

EVENTS = Path(__file__).resolve().parents[1] / "events"

# The recorded event each kind must look like.
RECORDED = {
    "s3": "s3_put.json",
    "minio": "minio_put.json",
    "sqs": "sqs_s3.json",
    "sns": "sns_s3.json",
    "eventbridge": "eventbridge_s3.json",
    "api": "apigw_v1.json",
    "api-v2": "apigw_v2.json",
    "url": "apigw_v2.json",
}

# Fields whose names are the request's own (headers, query parameters).
FREE_FORM = ("headers", "queryStringParameters", "multiValueQueryStringParameters")

KEYS = [
    "incoming/photo.jpg",
    "in/my holiday été +1.txt",
    "a+b/c%20d.txt",
    "deep/er/still/x?y=z&w#frag.bin",
]


def missing_fields(recorded: Any, made: Any, where: str = "") -> list[str]:
    """The fields of ``recorded`` that ``made`` lacks, walking objects, the first item of
    lists and the JSON messages that SQS and SNS carry."""
    if isinstance(recorded, str) and isinstance(made, str) and recorded.startswith("{"):
        return missing_fields(json.loads(recorded), json.loads(made), where)
    if isinstance(recorded, list) and recorded:
        if not isinstance(made, list) or not made:
            return [where]
        return missing_fields(recorded[0], made[0], f"{where}[0]")
    if not isinstance(recorded, dict):
        return []
    if not isinstance(made, dict):
        return [where]
    missing = []
    for name, value in recorded.items():
        if name not in made:
            missing.append(f"{where}.{name}")
        elif name not in FREE_FORM:
            missing += missing_fields(value, made[name], f"{where}.{name}")
    return missing


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_the_fields_of_the_recorded_event(kind: str) -> None:
    recorded = json.loads((EVENTS / RECORDED[kind]).read_text())
    sample = Sample(query={"lang": "en", "mode": "fast"}, body=b"hello")

    assert missing_fields(recorded, generate(kind, sample)) == []


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("kind", OBJECT_KINDS)
def test_object_events_are_read_back_as_the_object(kind: str, key: str) -> None:
    sample = Sample(bucket="uploads", key=key, size=4321, region="eu-west-1")

    parsed = events.parse(json.dumps(generate(kind, sample)))

    (record,) = parsed.records
    assert (record.bucket, record.key, record.size) == ("uploads", key, 4321)
    assert record.source == ("minio" if kind == "minio" else "s3")
    assert record.event_time
    assert not events.is_api_request(parsed.raw)


@pytest.mark.parametrize("kind", ["api", "api-v2", "url"])
@pytest.mark.parametrize("body", [b"", b"plain text\n", "été".encode(), b"\x89PNG\r\n\x1a\n\xff"])
def test_http_events_are_read_back_as_the_request(kind: str, body: bytes) -> None:
    sample = Sample(method="PUT", path="/convert", query={"width": "640"}, body=body)
    event = generate(kind, sample)

    parsed = events.parse(json.dumps(event))

    (record,) = parsed.records
    assert record.source == "api"
    assert record.body == body
    assert dict(record.query) == {"width": "640"}
    assert events.is_api_request(event)
    if kind == "api":
        assert (event["httpMethod"], event["path"]) == ("PUT", "/convert")
    else:
        http = event["requestContext"]["http"]
        assert (http["method"], http["path"], event["rawQueryString"]) == (
            "PUT",
            "/convert",
            "width=640",
        )


def test_binary_bodies_travel_in_base64_and_text_as_it_is() -> None:
    binary = generate("api-v2", Sample(body=b"\xff\x00"))
    text = generate("api-v2", Sample(body=b"hi"))

    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff\x00"
    assert (text["isBase64Encoded"], text["body"]) == (False, "hi")


def test_keys_are_encoded_as_each_sender_encodes_them() -> None:
    sample = Sample(key="in/my photo+1.jpg")

    assert generate("s3", sample)["Records"][0]["s3"]["object"]["key"] == "in/my+photo%2B1.jpg"
    minio = generate("minio", sample)
    assert minio["Records"][0]["s3"]["object"]["key"] == "in%2Fmy+photo%2B1.jpg"
    assert minio["Key"] == "example-bucket/in/my photo+1.jpg"
    assert generate("eventbridge", sample)["detail"]["object"]["key"] == "in/my photo+1.jpg"


def test_a_function_url_event_is_one_of_lambda_urls() -> None:
    event = generate("url", Sample(region="eu-west-1"))

    assert event["routeKey"] == "$default"
    assert event["requestContext"]["domainName"].endswith(".lambda-url.eu-west-1.on.aws")


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown event kind 'kafka': expected one of s3, minio"):
        generate("kafka", Sample())

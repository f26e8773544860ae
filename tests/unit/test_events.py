"""The event parser: every supported shape, and a clear error for every malformed one."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from supervisor import events
from supervisor.errors import EventError

Load = Callable[[str], Any]


@pytest.mark.parametrize(
    ("name", "kind", "source", "bucket", "keys"),
    [
        ("s3_put.json", "records", "s3", "input-bucket", ["incoming/photo.jpg"]),
        (
            "s3_two_records.json",
            "records",
            "s3",
            "input-bucket",
            ["incoming/one.txt", "incoming/two.txt"],
        ),
        ("minio_put.json", "records", "minio", "input-bucket", ["incoming/photo.jpg"]),
        ("sqs_s3.json", "records", "s3", "input-bucket", ["incoming/from-sqs.txt"]),
        ("sns_s3.json", "records", "s3", "input-bucket", ["incoming/from-sns.txt"]),
        (
            "eventbridge_s3.json",
            "eventbridge",
            "s3",
            "input-bucket",
            ["incoming/from eventbridge.txt"],
        ),
        (
            "sqs_eventbridge_s3.json",
            "records",
            "s3",
            "input-bucket",
            ["incoming/from eventbridge.txt"],
        ),
    ],
)
def test_object_events(
    load_event: Load, name: str, kind: str, source: str, bucket: str, keys: list[str]
) -> None:
    parsed = events.parse(load_event(name))
    assert parsed.kind == kind
    assert [r.key for r in parsed.records] == keys
    assert {r.bucket for r in parsed.records} == {bucket}
    assert {r.source for r in parsed.records} == {source}
    assert all(r.is_object and r.body is None for r in parsed.records)


def test_keys_are_url_decoded_once(load_event: Load) -> None:
    (record,) = events.parse(load_event("s3_special_key.json")).records
    assert record.key == "incoming/my holiday été +1.txt"


def test_size_and_time_are_kept(load_event: Load) -> None:
    (record,) = events.parse(load_event("s3_put.json")).records
    assert record.size == 11
    assert record.event_time == "2026-11-28T10:00:00.000Z"


def test_json_text_is_accepted(load_event: Load) -> None:
    text = json.dumps(load_event("s3_put.json"))
    assert events.parse(text).records == events.parse(text.encode()).records


def test_s3_test_event_in_sqs_is_skipped(load_event: Load) -> None:
    assert events.parse(load_event("sqs_s3_test_event.json")).records == ()


def test_api_gateway_v1_body_is_base64_decoded(load_event: Load) -> None:
    parsed = events.parse(load_event("apigw_v1.json"))
    (record,) = parsed.records
    assert parsed.kind == "api-v1"
    assert record.source == "api"
    assert record.body == b"\x89PNG\r\n\x1a\nbinary body"
    assert record.query == {"width": "640", "mode": "fast"}
    assert record.file_name == "api_event_file"


def test_api_gateway_v2_plain_body(load_event: Load) -> None:
    parsed = events.parse(load_event("apigw_v2.json"))
    (record,) = parsed.records
    assert parsed.kind == "api-v2"
    assert record.body == b"hello from an HTTP API"
    assert record.query == {"lang": "en"}


def test_direct_invocation_is_saved_whole(load_event: Load) -> None:
    parsed = events.parse(load_event("direct.json"))
    (record,) = parsed.records
    assert parsed.kind == "direct"
    assert json.loads(record.body or b"") == load_event("direct.json")


def test_script_is_taken_out_of_a_direct_event() -> None:
    parsed = events.parse({"script": "ZWNobyBoaQ==", "x": 1})
    assert parsed.script == "ZWNobyBoaQ=="
    assert json.loads(parsed.records[0].body or b"") == {"x": 1}
    only_script = events.parse({"script": "ZWNobyBoaQ=="})
    assert only_script.records[0].body is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        (None, "must be a JSON object"),
        ({"Records": []}, "Records is empty"),
        ({"Records": "x"}, "Records must be a list"),
        ({"Records": [1]}, "Records[0] must be an object"),
        ({"Records": [{"eventSource": "aws:kinesis"}]}, "unknown record"),
        ({"Records": [{"eventSource": "aws:s3"}]}, "Records[0].s3 is missing"),
        (
            {"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "k"}}}]},
            "s3.bucket.name is missing",
        ),
        ({"Records": [{"eventSource": "aws:sqs", "body": "{"}]}, "body is not JSON"),
        ({"Records": [{"eventSource": "aws:sns"}]}, "Sns is missing"),
        ({"script": "not base64!"}, "not valid base64"),
        (
            {"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}},
            "is not 'Object Created'",
        ),
        (
            {"httpMethod": "POST", "requestContext": {}, "body": "%%", "isBase64Encoded": True},
            "not base64",
        ),
    ],
)
def test_malformed_events_name_what_is_wrong(event: Any, message: str) -> None:
    with pytest.raises(EventError, match=re.escape(message)):
        events.parse(event)


def test_record_without_object_names_the_field(load_event: Load) -> None:
    with pytest.raises(EventError, match=r"Records\[0\]\.s3\.object is missing"):
        events.parse(load_event("s3_no_object.json"))


def test_event_for_one_record_of_many(load_event: Load) -> None:
    parsed = events.parse(load_event("s3_two_records.json"))
    alone = events.event_for(parsed, parsed.records[1])
    assert [r.key for r in events.parse(alone).records] == ["incoming/two.txt"]
    single = events.parse(load_event("sqs_s3.json"))
    assert events.event_for(single, single.records[0]) == load_event("sqs_s3.json")


# The event `scar run` sends for each file of a bucket (SCAR 4.3.1, scar/parser/cfgfile.py):
# no eventName, no eventTime, and the key as S3 lists it, not URL-encoded.
def scar_event(bucket: str, key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "s3": {
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key},
                },
            }
        ]
    }


def test_an_empty_event_is_one_direct_record_without_input() -> None:
    parsed = events.parse({})
    assert parsed.kind == "direct"
    (record,) = parsed.records
    assert record.body is None
    assert parsed.script is None
    assert parsed.cmd_args is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('["-v", "a b", "--out=x"]', ("-v", "a b", "--out=x")),
        (["one", "two"], ("one", "two")),
        ("[]", ()),
    ],
)
def test_cmd_args_from_scar_run(value: Any, expected: tuple[str, ...]) -> None:
    parsed = events.parse({"cmd_args": value})
    assert parsed.cmd_args == expected
    (record,) = parsed.records
    assert record.body is None


@pytest.mark.parametrize("value", ["-v", '{"a": 1}', "[1, 2]", 5, '["a\\u0000b"]'])
def test_cmd_args_must_be_a_list_of_strings(value: Any) -> None:
    with pytest.raises(EventError, match="cmd_args"):
        events.parse({"cmd_args": value})


def test_the_payload_of_a_direct_invocation_leaves_out_the_callers_keys() -> None:
    script = "ZWNobyBoaQo="
    parsed = events.parse({"script": script, "cmd_args": '["x"]', "greeting": "hi"})
    (record,) = parsed.records
    assert record.body == b'{"greeting": "hi"}'
    assert parsed.script == script


def test_a_script_inside_an_api_request_is_not_the_callers_script() -> None:
    event = {
        "httpMethod": "POST",
        "requestContext": {"requestId": "r"},
        "body": '{"script": "ZWNobyBoaQo="}',
        "script": "ZWNobyBoaQo=",
    }
    parsed = events.parse(event)
    assert parsed.script is None
    assert parsed.cmd_args is None


@pytest.mark.parametrize("key", ["input/", "input/sub folder/"])
def test_folder_markers_are_skipped(key: str) -> None:
    assert events.parse(scar_event("bucket", key)).records == ()


def test_a_folder_marker_beside_a_file_leaves_the_file(load_event: Load) -> None:
    event = load_event("s3_two_records.json")
    event["Records"][0]["s3"]["object"]["key"] = "incoming/folder/"
    assert [r.key for r in events.parse(event).records] == ["incoming/two.txt"]


@pytest.mark.parametrize("key", ["data file+v1.txt", "a%20b c.txt", "in/x+y z.txt"])
def test_scar_run_keys_with_a_space_are_taken_as_they_are(key: str) -> None:
    (record,) = events.parse(scar_event("bucket", key)).records
    assert record.key == key
    assert record.event_time == ""


def test_notification_keys_are_still_decoded(load_event: Load) -> None:
    event = load_event("s3_put.json")
    event["Records"][0]["s3"]["object"]["key"] = "data+file%2Bv1.txt"
    (record,) = events.parse(event).records
    assert record.key == "data file+v1.txt"


@pytest.mark.parametrize(
    ("provider", "kind", "ident"),
    [("minio.oscar-2", "minio", "oscar-2"), ("minio", "minio", "default"), ("c1", "minio", "c1")],
)
def test_oscar_delegated_events_are_unwrapped(
    load_event: Load, provider: str, kind: str, ident: str
) -> None:
    inner = load_event("minio_put.json")
    parsed = events.parse({"storage_provider": provider, "event": json.dumps(inner)})
    assert parsed.kind == "delegated"
    (record,) = parsed.records
    assert record.key == "incoming/photo.jpg"
    assert (record.provider_type, record.provider_id) == (kind, ident)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"storage_provider": "minio", "event": "{"}, "'event' is not JSON"),
        ({"storage_provider": "minio", "event": '{"a": 1}'}, "original storage event"),
        ({"storage_provider": 3, "event": "{}"}, "provider name"),
    ],
)
def test_malformed_delegated_events(event: Any, message: str) -> None:
    with pytest.raises(EventError, match=re.escape(message)):
        events.parse(event)


def test_a_record_handed_on_alone_carries_no_script_from_its_envelope(load_event: Load) -> None:
    """An SQS message's author controls its body: an EventBridge event inside it that adds
    `script` or `cmd_args` must not become the top level of the event handed to Batch."""
    planted = load_event("eventbridge_s3.json")
    planted["script"] = "ZWNobyBwd25lZAo="
    planted["cmd_args"] = '["pwned"]'
    event = {
        "Records": [
            {"eventSource": "aws:sqs", "body": json.dumps(planted)},
            {"eventSource": "aws:sqs", "body": json.dumps(planted)},
        ]
    }
    parsed = events.parse(event)
    assert parsed.script is None
    handed_on = events.event_for(parsed, parsed.records[1])
    assert "script" not in handed_on
    assert "cmd_args" not in handed_on
    again = events.parse(handed_on)
    assert again.script is None
    assert again.cmd_args is None
    assert [r.key for r in again.records] == ["incoming/from eventbridge.txt"]


def test_a_delegated_record_handed_on_alone_keeps_its_provider(load_event: Load) -> None:
    inner = load_event("s3_two_records.json")
    parsed = events.parse({"storage_provider": "s3.archive", "event": json.dumps(inner)})
    again = events.parse(events.event_for(parsed, parsed.records[1]))
    (record,) = again.records
    assert record.key == "incoming/two.txt"
    assert (record.provider_type, record.provider_id) == ("s3", "archive")


def test_a_query_parameter_named_to_forge_a_line_is_named_on_one_line() -> None:
    event = {
        "version": "2.0",
        "routeKey": "POST /",
        "requestContext": {"http": {"method": "POST"}},
        "body": "",
        "queryStringParameters": {"a\nINFO finished\x1b[2K\u2028": "\ud800"},
    }
    with pytest.raises(EventError) as raised:
        events.parse(event)
    message = str(raised.value)
    assert "INFO finished" in message
    assert "lone surrogate U+D800" in message
    assert not {"\n", "\x1b", "\u2028"} & set(message)


def test_a_folder_marker_named_to_forge_a_line_is_logged_on_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="supervisor.events")
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "s3": {
                    "bucket": {"name": "in"},
                    "object": {"key": "x%0AINFO+finished%1B%5B2K/", "size": 0},
                },
            }
        ]
    }
    assert events.parse(event).records == ()
    (line,) = [r.getMessage() for r in caplog.records if "folder marker" in r.getMessage()]
    assert line == "Skipping the folder marker in/x\\nINFO finished\\x1b[2K/: it is not a file"

"""Property tests: whatever arrives, the parsers answer with a typed result or a clear error.

``supervisor.events.parse`` gets arbitrary JSON values and text, and S3, SQS, SNS,
EventBridge and API shapes with every field optional, of the wrong type or garbled
(message bodies that are text, JSON of anything, or events nested in events): the
outcome is a ``ParsedEvent`` of well-formed records or an ``EventError``, never another
exception.  ``supervisor.config.parse_config`` gets arbitrary text and arbitrary
mappings over the definition's keys (as YAML and as JSON): the outcome is a
``FunctionConfig`` or a ``ConfigError`` whose message names a key of the input, says
what is missing, or says the text is not a mapping or not valid YAML.  The handler gets
the same events in ``tests/functional/test_handler_properties.py``.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from supervisor import events
from supervisor.config import FunctionConfig, parse_config
from supervisor.errors import ConfigError, EventError
from supervisor.events import ParsedEvent, Record

# PROPERTY_EXAMPLES=5000 for a longer search.
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "300"))
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field as it should be, or anything else."""
    return strategy | json_values


key_text = st.lists(
    st.sampled_from([*"ab./%+ 2F0é\x00\n", "..", "%2F", "%00", "%25", "\ud800"]), max_size=8
).map("".join)
s3_object = st.fixed_dictionaries(
    {},
    optional={
        "key": maybe(key_text),
        "size": maybe(st.integers(min_value=-5, max_value=2**64)),
        "eTag": json_values,
    },
)
s3_bucket = st.fixed_dictionaries(
    {}, optional={"name": maybe(st.sampled_from(["", "bucket", "my.bucket", "../x"]))}
)
s3_part = st.fixed_dictionaries(
    {}, optional={"bucket": maybe(s3_bucket), "object": maybe(s3_object)}
)
sources = st.sampled_from(["aws:s3", "minio:s3", "aws:sqs", "aws:sns", "aws:sqs ", "", None])


# A record as S3 sends it, with only its key and size drawn: most garbled ones stop early.
well_formed_s3_record = st.fixed_dictionaries(
    {
        "eventSource": st.sampled_from(["aws:s3", "minio:s3"]),
        "s3": st.fixed_dictionaries(
            {
                "bucket": st.fixed_dictionaries(
                    {"name": st.sampled_from(["bucket", "bucket", "no-such-bucket", "../x"])}
                ),
                "object": st.fixed_dictionaries(
                    {"key": key_text},
                    optional={"size": st.integers(min_value=-1, max_value=2**40)},
                ),
            }
        ),
    }
)


well_formed_event = st.lists(well_formed_s3_record, min_size=1, max_size=3).map(
    lambda records: {"Records": records}
)
well_formed_event = well_formed_event | well_formed_event.map(
    lambda event: {"Records": [{"eventSource": "aws:sqs", "body": json.dumps(event)}]}
)


def records_event(bodies: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    garbled = st.fixed_dictionaries(
        {},
        optional={
            "eventSource": maybe(sources),
            "EventSource": maybe(sources),
            "s3": maybe(s3_part),
            "eventTime": json_values,
            "body": maybe(bodies),
            "Sns": maybe(st.fixed_dictionaries({}, optional={"Message": maybe(bodies)})),
        },
    )
    record = garbled | well_formed_s3_record
    return st.fixed_dictionaries({"Records": maybe(st.lists(record, max_size=3))})


eventbridge_event = st.fixed_dictionaries(
    {},
    optional={
        "source": maybe(st.just("aws.s3")),
        "detail-type": maybe(st.sampled_from(["Object Created", "Object Deleted"])),
        "detail": maybe(
            st.fixed_dictionaries({}, optional={"bucket": s3_bucket, "object": s3_object})
        ),
        "time": json_values,
    },
)
api_event = st.fixed_dictionaries(
    {
        "requestContext": maybe(
            st.fixed_dictionaries(
                {}, optional={"http": json_values, "time": json_values, "requestTime": scalars}
            )
        )
    },
    optional={
        "httpMethod": json_values,
        "routeKey": json_values,
        "version": maybe(st.just("2.0")),
        "body": maybe(
            st.text(max_size=16)
            | st.binary(max_size=8).map(lambda data: base64.b64encode(data).decode())
        ),
        "isBase64Encoded": json_values,
        "queryStringParameters": maybe(st.dictionaries(st.text(max_size=4), scalars)),
    },
)
scripts = st.text(max_size=8) | st.binary(max_size=6).map(lambda d: base64.b64encode(d).decode())


def _with_script(event: dict[str, Any], script: Any) -> dict[str, Any]:
    return {**event, "script": script}


def _events(depth: int) -> st.SearchStrategy[Any]:
    """Events whose SQS and SNS bodies hold text, JSON of anything, or events ``depth`` deep."""
    bodies: st.SearchStrategy[Any] = st.text(max_size=12) | json_values.map(json.dumps)
    if depth > 0:
        inner = _events(depth - 1)
        bodies = (
            bodies
            | inner.map(json.dumps)
            | inner.map(
                lambda event: json.dumps({"Type": "Notification", "Message": json.dumps(event)})
            )
        )
    shapes = records_event(bodies) | eventbridge_event | api_event | well_formed_event
    if depth == 2:
        shapes = shapes | st.builds(_with_script, shapes, scripts)
    return shapes


any_event = _events(2) | json_values
DEEP = "[" * 100_000


def assert_typed(outcome: Any) -> None:
    assert isinstance(outcome, ParsedEvent)
    assert isinstance(outcome.records, tuple)
    for record in outcome.records:
        assert isinstance(record, Record)
        assert record.source in ("s3", "minio", "api", "direct")
        if record.is_object:
            assert isinstance(record.bucket, str)
            assert isinstance(record.key, str)
            assert record.bucket
            assert record.key
        assert record.size is None or isinstance(record.size, int)
        assert record.size is None or record.size >= 0
        assert record.body is None or isinstance(record.body, bytes)
    assert outcome.script is None or isinstance(outcome.script, str)


def parse_outcome(raw: Any) -> ParsedEvent | EventError:
    try:
        return events.parse(raw)
    except EventError as exc:
        error = exc
    assert str(error).strip(), "an EventError says what is wrong"
    return error


@PROPERTY
@given(any_event)
@example(DEEP)
@example({"Records": [{"eventSource": "aws:sqs", "body": DEEP}]})
@example({"Records": [{"eventSource": "aws:sns", "Sns": {"Message": DEEP}}]})
@example({"Records": [{"eventSource": "aws:sqs", "body": json.dumps({"Records": "x"})}]})
def test_any_event_is_parsed_or_refused_with_an_event_error(event: Any) -> None:
    outcome = parse_outcome(event)
    if isinstance(outcome, ParsedEvent):
        assert_typed(outcome)


@PROPERTY
@given(any_event)
def test_any_event_as_json_text_or_bytes_parses_like_the_decoded_event(event: Any) -> None:
    text = json.dumps(event)
    outcomes = [parse_outcome(event), parse_outcome(text), parse_outcome(text.encode())]
    kinds = {type(outcome) for outcome in outcomes}
    assert len(kinds) == 1, outcomes
    if isinstance(outcomes[0], ParsedEvent):
        for outcome in outcomes:
            assert_typed(outcome)
        assert [o.records for o in outcomes[1:]] == [outcomes[0].records] * 2  # type: ignore[union-attr]


@PROPERTY
@given(st.text(max_size=40) | st.binary(max_size=40))
@example(b"\xff\xfe")
@example("\ud800")
@example('{"a": NaN}')
def test_any_text_is_parsed_or_refused_with_an_event_error(raw: str | bytes) -> None:
    outcome = parse_outcome(raw)
    if isinstance(outcome, ParsedEvent):
        assert_typed(outcome)


# --- function definitions -------------------------------------------------------------------

TOP_LEVEL_KEYS = (
    "name",
    "execution_mode",
    "log_level",
    "init_script",
    "allow_event_script",
    "file_stage_in",
    "container",
    "input",
    "output",
    "storage_providers",
    "batch",
    "udocker",
)
locations = st.fixed_dictionaries(
    {},
    optional={
        "storage_provider": maybe(st.sampled_from(["s3", "minio.lab", "local.x", "s3.", "ftp"])),
        "path": maybe(st.sampled_from(["bucket", "bucket/folder", "/", "a/../b", ""])),
        "prefix": json_values,
        "suffix": json_values,
    },
)
section_values = {
    "name": maybe(st.text(max_size=10)),
    "execution_mode": maybe(st.sampled_from(["lambda", "batch", "lambda-batch", "cloud"])),
    "log_level": maybe(st.sampled_from(["debug", "INFO", "loud"])),
    "init_script": maybe(st.text(max_size=10)),
    "container": maybe(
        st.fixed_dictionaries(
            {},
            optional={
                "timeout_threshold": maybe(st.floats(min_value=-10, max_value=2000)),
                "image": json_values,
                "environment": maybe(
                    st.fixed_dictionaries(
                        {}, optional={"Variables": maybe(st.dictionaries(st.text(), scalars))}
                    )
                ),
                "pass_aws_credentials": json_values,
            },
        )
    ),
    "input": maybe(st.lists(maybe(locations), max_size=2)),
    "output": maybe(st.lists(maybe(locations), max_size=2)),
    "storage_providers": maybe(
        st.fixed_dictionaries(
            {},
            optional={
                kind: maybe(st.dictionaries(st.sampled_from(["a", "lab"]), json_values))
                for kind in ("s3", "minio", "local")
            },
        )
    ),
    "batch": maybe(
        st.fixed_dictionaries(
            {},
            optional={
                "delegate_on": json_values,
                "timeout": json_values,
                "multi_node_parallel": json_values,
            },
        )
    ),
    "udocker": maybe(st.fixed_dictionaries({}, optional={"execmode": json_values})),
}
definitions = st.fixed_dictionaries({}, optional=section_values).flatmap(
    lambda known: st.dictionaries(st.text(max_size=6), json_values, max_size=2).map(
        lambda extra: {**extra, **known}
    )
)


def assert_config_outcome(text: str, data: Any) -> None:
    try:
        config = parse_config(text)
    except ConfigError as exc:
        message = str(exc)
        named = [key for key in data if str(key) in message] if isinstance(data, dict) else []
        generic = ("missing", "expected a mapping", "not valid YAML")
        assert named or any(phrase in message for phrase in generic), message
        return
    assert isinstance(config, FunctionConfig)
    assert isinstance(data, dict)
    assert config.name


@PROPERTY
@given(definitions)
@example({"name": "f", "container": {"timeout_threshold": "soon"}})
@example({"storage_providers": {"minio": {"lab": {"secret_key": "s3cr3t"}}}})
@example({"name": "f", "init_script": "a\x00b"})
def test_any_definition_is_accepted_or_refused_naming_a_key(data: dict[str, Any]) -> None:
    assert_config_outcome(yaml.safe_dump(data), data)
    assert_config_outcome(json.dumps(data), data)


@PROPERTY
@given(st.text(max_size=60))
@example("2001-13-14")
@example("name: f\nbatch: {timeout: !!float soon}")
@example("[" * 5000)
@example("name: !!timestamp x")
@example("? [a]\n: b")
def test_any_text_is_a_definition_or_refused_with_a_config_error(text: str) -> None:
    try:
        data = yaml.safe_load(text)
    except Exception:
        data = None
    assert_config_outcome(text, data)

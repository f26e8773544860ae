"""The ``idempotency`` section of a function definition, and where it takes effect."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config import parse_config
from supervisor.deadline import Deadline
from supervisor.errors import ConfigError
from supervisor.idempotency import NO_DEADLINE_HOLD, DynamoDBIdempotency, _TimeLeft
from supervisor.wiring import build_supervisor


@pytest.mark.parametrize(
    "table",
    [
        "supervisor-idempotency",
        "a.b_c-1",
        "arn:aws:dynamodb:eu-west-1:123456789012:table/supervisor-idempotency",
        "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/records",
    ],
)
def test_a_table_is_a_name_or_an_arn(table: str) -> None:
    config = parse_config(f"name: fn\nidempotency: {{table: '{table}'}}\n")

    assert config.idempotency.table == table
    assert config.idempotency.expires_after_seconds == 3600


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("{table: ab}", "idempotency.table"),
        ("{table: 'has space'}", "idempotency.table"),
        ("{table: 'arn:aws:dynamodb:eu-west-1:12345:table/t1x'}", "idempotency.table"),
        ("{table: [a, b]}", "idempotency.table"),
        ("{table: t1x, expires_after_seconds: 30}", "idempotency.expires_after_seconds"),
        ("{table: t1x, expires_after_seconds: soon}", "idempotency.expires_after_seconds"),
        ("on", "idempotency"),
    ],
)
def test_an_invalid_section_is_refused_naming_the_key(section: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(f"name: fn\nidempotency: {section}\n")

    assert f"  {key}:" in str(raised.value)


def test_no_table_no_idempotency() -> None:
    assert parse_config("name: fn\n").idempotency.table is None


@pytest.mark.parametrize(
    ("platform", "mode", "expected"),
    [
        ("lambda-zip", "batch", True),
        ("lambda-image", "lambda-batch", True),
        ("local", "batch", False),
        ("batch", "batch", False),
    ],
)
def test_records_are_kept_in_lambda_only(
    tmp_path: Path, platform: str, mode: str, expected: bool
) -> None:
    config = parse_config(
        f"name: fn\nexecution_mode: {mode}\nidempotency: {{table: records, "
        "expires_after_seconds: 600}\ncontainer: {timeout_threshold: 2}\n"
    )

    supervisor = build_supervisor(
        config,
        platform=platform,  # type: ignore[arg-type]
        environ={},
        work_root=tmp_path,
        storage_root=tmp_path,
    )

    if not expected:
        assert supervisor.idempotency is None
        return
    assert isinstance(supervisor.idempotency, DynamoDBIdempotency)
    assert supervisor.idempotency.table == "records"


def test_an_in_progress_record_holds_until_the_deadline() -> None:
    now = [100.0]

    left = _TimeLeft(Deadline(102.5, lambda: now[0]))

    assert left.get_remaining_time_in_millis() == 2500
    now[0] = 110.0
    assert left.get_remaining_time_in_millis() == 0
    assert _TimeLeft(Deadline.none()).get_remaining_time_in_millis() == NO_DEADLINE_HOLD * 1000

"""build_environment: the script's environment is a fresh dict with only what it should see."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from supervisor.errors import ExecutionError
from supervisor.execution import build_environment

HOST = {
    "PATH": "/opt/bin:/usr/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "LC_CTYPE": "C.UTF-8",
    "TZ": "UTC",
    "HOME": "/home/sbx_user1051",
    "LD_LIBRARY_PATH": "/opt/lib",
    "TMPDIR": "/tmp",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY000001",
    "AWS_SECRET_ACCESS_KEY": "secret-do-not-leak",
    "AWS_SESSION_TOKEN": "token-do-not-leak",
    "AWS_LAMBDA_FUNCTION_NAME": "fn",
    "FUNCTION_CONFIG": "bmFtZTogZm4K",
    "FDL": "bmFtZTogZm4K",
    "PYTHONPATH": "/var/runtime",
    "_HANDLER": "handlers.lambda_handler.handler",
}

CONTRACT = {
    "INPUT_FILE_PATH": "/tmp/req/input/photo.jpg",
    "TMP_INPUT_DIR": "/tmp/req/input",
    "TMP_OUTPUT_DIR": "/tmp/req/output",
    "STORAGE_OBJECT_KEY": "in/photo.jpg",
    "EVENT_TIME": "2024-05-01T12:00:00.000Z",
    "EVENT": '{"Records": []}',
    "REQUEST_ID": "req-1",
    "AWS_LAMBDA_REQUEST_ID": "req-1",
    "INSTANCE_IP": "10.0.0.7",
}


def build(**overrides: Any) -> dict[str, str]:
    arguments: dict[str, Any] = {
        "host": HOST,
        "input_file": Path("/tmp/req/input/photo.jpg"),
        "input_dir": Path("/tmp/req/input"),
        "output_dir": Path("/tmp/req/output"),
        "object_key": "in/photo.jpg",
        "event_time": "2024-05-01T12:00:00.000Z",
        "event_json": '{"Records": []}',
        "request_id": "req-1",
        "instance_ip": "10.0.0.7",
        "variables": {},
        "query": {},
    }
    arguments.update(overrides)
    return build_environment(**arguments)


def test_exactly_the_whitelist_and_the_contract() -> None:
    host_part = {name: HOST[name] for name in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")}
    host_part.update({name: HOST[name] for name in ("HOME", "LD_LIBRARY_PATH", "TMPDIR")})
    assert build() == {**host_part, **CONTRACT}


@pytest.mark.parametrize(
    "name",
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "FUNCTION_CONFIG",
        "FDL",
        "PYTHONPATH",
        "_HANDLER",
        "AWS_LAMBDA_FUNCTION_NAME",
    ],
)
def test_host_variables_outside_the_whitelist_never_pass(name: str) -> None:
    environment = build()
    assert name not in environment
    assert HOST[name] not in environment.values()


@pytest.mark.parametrize(
    ("host", "expected_path"),
    [
        ({}, "/usr/local/bin:/usr/bin:/bin"),
        ({"HOME": "/root"}, "/usr/local/bin:/usr/bin:/bin"),
        ({"PATH": "/custom/bin"}, "/custom/bin"),
    ],
)
def test_path(host: Mapping[str, str], expected_path: str) -> None:
    assert build(host=host)["PATH"] == expected_path


def test_no_input_file() -> None:
    assert build(input_file=None).get("INPUT_FILE_PATH", "") == ""


@pytest.mark.parametrize(
    ("variables", "query", "expected"),
    [
        ({"MODEL": "yolo"}, {}, {"MODEL": "yolo"}),
        ({}, {"size": "10"}, {"CONT_VAR_size": "10"}),
        ({}, {"out-format": "png"}, {"CONT_VAR_out_format": "png"}),
        ({}, {"a b/c;d$": "x"}, {"CONT_VAR_a_b_c_d_": "x"}),
        ({}, {"ÿname": "x"}, {"CONT_VAR__name": "x"}),
        ({"PATH": "/opt/tool/bin"}, {}, {"PATH": "/opt/tool/bin"}),
        ({"A": "1"}, {"A": "2"}, {"A": "1", "CONT_VAR_A": "2"}),
        ({}, {"nul": "a\0b"}, {"CONT_VAR_nul": "ab"}),
        ({"V": "x\0"}, {}, {"V": "x"}),
    ],
)
def test_variables_and_query(
    variables: Mapping[str, str], query: Mapping[str, str], expected: Mapping[str, str]
) -> None:
    environment = build(variables=variables, query=query)
    for name, value in expected.items():
        assert environment[name] == value


def test_no_value_holds_a_nul() -> None:
    environment = build(event_json='{"a": "\0"}', object_key="k\0ey")
    assert all("\0" not in value for value in environment.values())
    assert environment["STORAGE_OBJECT_KEY"] == "key"


def test_query_without_a_name_is_skipped() -> None:
    assert "CONT_VAR_" not in build(query={"": "x"})


@pytest.mark.parametrize("name", ["", "A=B", "A\0B"])
def test_invalid_variable_name(name: str) -> None:
    with pytest.raises(ExecutionError, match="variable name"):
        build(variables={name: "x"})


def test_a_fresh_dict_each_time() -> None:
    host = dict(HOST)
    first = build(host=host)
    first["EXTRA"] = "1"
    assert "EXTRA" not in build(host=host)
    assert host == HOST


def test_tmpdir_is_the_invocation_folder_when_given() -> None:
    assert build(tmp_dir=Path("/tmp/req/tmp"))["TMPDIR"] == "/tmp/req/tmp"
    assert build()["TMPDIR"] == HOST["TMPDIR"]


def test_aws_credentials_only_when_asked() -> None:
    host = {**HOST, "AWS_REGION": "eu-west-1", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/x"}
    asked = build(host=host, aws_credentials=True)
    plain = build(host=host)

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert asked[name] == HOST[name]
        assert name not in plain
    assert asked["AWS_REGION"] == "eu-west-1"
    assert asked["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] == "/v2/x"
    for name in ("FUNCTION_CONFIG", "FDL", "PYTHONPATH", "AWS_LAMBDA_FUNCTION_NAME"):
        assert name not in asked

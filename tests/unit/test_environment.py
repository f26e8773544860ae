"""The script's environment: each variable, on each platform, reaches the script or not.

One table (``TABLE``) says, for every variable a host may hold, what the script sees on each
platform; the other tests cover the credentials switch, the frozen binary's library path,
the contract variables, the definition's variables and the query parameters.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from supervisor import logs
from supervisor.config import Platform, reading
from supervisor.environment import (
    AWS_CREDENTIAL_VARIABLES,
    CONTRACT_VARIABLES,
    EVENT_LIMIT,
    SECRET_VARIABLES,
    SUPERVISOR_SETTINGS,
    InvocationFacts,
    ScriptSettings,
    event_fits,
    local_environ,
    script_environment,
)
from supervisor.errors import ExecutionError
from supervisor.execution import build_environment
from supervisor.local.batch import definition_environment

PLATFORMS: tuple[Platform, ...] = ("lambda-zip", "lambda-image", "batch", "oscar", "local")
LAMBDA = frozenset({"lambda-zip", "lambda-image"})
CONTAINER = frozenset({"batch", "oscar"})
EVERYWHERE = frozenset(PLATFORMS)
NOWHERE: frozenset[str] = frozenset()

TMP_DIR = Path("/tmp/req/tmp")
FACTS = InvocationFacts(
    input_file=Path("/tmp/req/input/photo.jpg"),
    input_dir=Path("/tmp/req/input"),
    output_dir=Path("/tmp/req/output"),
    object_key="in/photo.jpg",
    event_time="2024-05-01T12:00:00.000Z",
    event_json='{"Records": []}',
    request_id="req-1",
    instance_ip="10.0.0.7",
    tmp_dir=TMP_DIR,
    event_file=Path("/tmp/req/event.json"),
)
CONTRACT = {
    "INPUT_FILE_PATH": "/tmp/req/input/photo.jpg",
    "TMP_INPUT_DIR": "/tmp/req/input",
    "TMP_OUTPUT_DIR": "/tmp/req/output",
    "STORAGE_OBJECT_KEY": "in/photo.jpg",
    "EVENT_TIME": "2024-05-01T12:00:00.000Z",
    "EVENT": '{"Records": []}',
    "EVENT_FILE": "/tmp/req/event.json",
    "REQUEST_ID": "req-1",
    "AWS_LAMBDA_REQUEST_ID": "req-1",
    "INSTANCE_IP": "10.0.0.7",
}

# (name, a value a host may hold, the platforms where the script gets that value).
TABLE: tuple[tuple[str, str, frozenset[str]], ...] = (
    # What programs need to run: everywhere.
    ("PATH", "/opt/bin:/usr/bin", EVERYWHERE),
    ("LANG", "C.UTF-8", EVERYWHERE),
    ("LC_ALL", "C.UTF-8", EVERYWHERE),
    ("LC_CTYPE", "C.UTF-8", EVERYWHERE),
    ("TZ", "UTC", EVERYWHERE),
    ("HOME", "/home/sbx_user1051", EVERYWHERE),
    ("LD_LIBRARY_PATH", "/opt/lib", EVERYWHERE),
    ("NVIDIA_VISIBLE_DEVICES", "GPU-5f3c1a2b", EVERYWHERE),
    ("CUDA_VISIBLE_DEVICES", "0", EVERYWHERE),
    ("NVIDIA_DRIVER_CAPABILITIES", "compute,utility", EVERYWHERE),
    # The local runs' and the containers' Python packages, never the Lambda runtime's.
    ("PYTHONPATH", "/var/runtime", CONTAINER | {"local"}),
    # The rest of a container's own environment: its image, the job definition, Batch, OSCAR.
    ("AWS_REGION", "eu-west-1", CONTAINER),
    ("AWS_DEFAULT_REGION", "eu-west-1", CONTAINER),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000", CONTAINER),
    ("AWS_EXECUTION_ENV", "AWS_ECS_EC2", CONTAINER),
    ("AWS_LAMBDA_FUNCTION_NAME", "fn", CONTAINER),
    ("_HANDLER", "handlers.lambda_handler.handler", CONTAINER),
    ("LAMBDA_TASK_ROOT", "/var/task", CONTAINER),
    ("AWS_BATCH_JOB_ID", "6f1c0a2e-job", CONTAINER),
    ("AWS_BATCH_JOB_ATTEMPT", "1", CONTAINER),
    ("AWS_BATCH_JOB_NODE_INDEX", "1", CONTAINER),
    ("AWS_BATCH_JOB_MAIN_NODE_INDEX", "0", CONTAINER),
    ("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS", "10.0.1.5", CONTAINER),
    ("AWS_BATCH_JOB_NUM_NODES", "2", CONTAINER),
    ("AWS_BATCH_JQ_NAME", "fn", CONTAINER),
    ("AWS_BATCH_CE_NAME", "fn-ce", CONTAINER),
    ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/abc", CONTAINER),
    ("MODEL_SIZE", "large", CONTAINER),  # SCAR's batch.environment.Variables
    ("KUBERNETES_SERVICE_HOST", "10.96.0.1", CONTAINER),
    ("KUBERNETES_SERVICE_PORT", "443", CONTAINER),
    ("OSCAR_SERVICE_NAME", "fn", CONTAINER),
    ("OSCAR_SERVICE_TOKEN", "oscar-service-token-1234", CONTAINER),
    ("OSCAR_SERVICE_BASE_PATH", "", CONTAINER),
    ("JOB_UUID", "fn-6f1c0a2e", CONTAINER),
    ("RESOURCE_ID", "node-1", CONTAINER),
    ("fprocess", "/oscar/bin/supervisor", CONTAINER),
    # The definition and what a job carries for the supervisor.
    ("FUNCTION_CONFIG", "bmFtZTogZm4K", NOWHERE),
    ("FDL", "bmFtZTogZm4K", NOWHERE),
    ("SCRIPT", "ZWNobyBoaQo=", NOWHERE),
    ("EVENT_URI", "s3://events/req-1.json", NOWHERE),
    ("CONTEXT", '{"function_name": "fn"}', NOWHERE),
    # The role's credentials, the ECS and EKS credential endpoints, tokens and token files.
    ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY000001", NOWHERE),
    ("AWS_SECRET_ACCESS_KEY", "secret-do-not-leak", NOWHERE),
    ("AWS_SESSION_TOKEN", "session-token-do-not-leak", NOWHERE),
    ("AWS_SECURITY_TOKEN", "security-token-do-not-leak", NOWHERE),
    ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/9f1e", NOWHERE),
    ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials", NOWHERE),
    ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token-do-not-leak", NOWHERE),
    ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks/token", NOWHERE),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/token", NOWHERE),
    ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/fn", NOWHERE),
    ("AWS_ROLE_SESSION_NAME", "fn-session", NOWHERE),
    ("AWS_PROFILE", "deploy", NOWHERE),
    ("AWS_SHARED_CREDENTIALS_FILE", "/home/me/.aws/credentials", NOWHERE),
    ("AWS_CONFIG_FILE", "/home/me/.aws/config", NOWHERE),
    # The supervisor's own settings and the Lambda Runtime API.
    ("SUPERVISOR_STORAGE_ROOT", "/data/storage", NOWHERE),
    ("SUPERVISOR_STORAGE_EVENTS", "/data/events", NOWHERE),
    ("SUPERVISOR_WORK_DIR", "/data/work", NOWHERE),
    ("SUPERVISOR_LOG_GROUP", "/aws/batch/fn", NOWHERE),
    ("SUPERVISOR_BATCH_JOB_ID", "local-job", NOWHERE),
    ("LOG_LEVEL", "DEBUG", NOWHERE),
    ("EXECUTION_MODE", "lambda-batch", NOWHERE),
    ("TIMEOUT_THRESHOLD", "10", NOWHERE),
    ("IMAGE_FILE", "/var/task/image.tar.gz", NOWHERE),
    ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001", NOWHERE),
    # A PyInstaller or staticx binary's own variables.
    ("LD_LIBRARY_PATH_ORIG", "/usr/lib/orig", NOWHERE),
    ("_MEIPASS2", "/tmp/_MEIabc", NOWHERE),
    ("_PYI_APPLICATION_HOME_DIR", "/tmp/_MEIabc", NOWHERE),
    ("_PYI_ARCHIVE_FILE", "/opt/faas-supervisor/bin/supervisor", NOWHERE),
    ("STATICX_BUNDLE_DIR", "/tmp/staticx-abc", NOWHERE),
    ("STATICX_PROG_PATH", "/opt/faas-supervisor/bin/supervisor", NOWHERE),
    # Query parameters are this invocation's, never the host's.
    ("CONT_VAR_admin", "true", NOWHERE),
)
HOST = {name: value for name, value, _ in TABLE}
CASES = [
    pytest.param(platform, name, value, platform in where, id=f"{platform}-{name}")
    for name, value, where in TABLE
    for platform in PLATFORMS
]


def environment_of(
    platform: Platform,
    *,
    environ: Mapping[str, str] = HOST,
    facts: InvocationFacts = FACTS,
    frozen: bool = False,
    **settings: Any,
) -> dict[str, str]:
    return script_environment(platform, environ, facts, ScriptSettings(**settings), frozen=frozen)


def test_the_table_names_each_variable_once() -> None:
    assert len(HOST) == len(TABLE)


@pytest.mark.parametrize(("platform", "name", "value", "reaches"), CASES)
def test_each_variable_on_each_platform(
    platform: Platform, name: str, value: str, reaches: bool
) -> None:
    environment = environment_of(platform)
    if reaches:
        assert environment[name] == value
    else:
        assert name not in environment


@pytest.mark.parametrize("platform", PLATFORMS)
def test_nothing_else_reaches_the_script(platform: Platform) -> None:
    expected = {name: value for name, value, where in TABLE if platform in where}
    assert environment_of(platform) == {**expected, "TMPDIR": str(TMP_DIR), **CONTRACT}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_no_withheld_value_hides_under_another_name(platform: Platform) -> None:
    withheld = {value for _, value, where in TABLE if not where and len(value) > 8}
    assert withheld.isdisjoint(environment_of(platform).values())


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("name", AWS_CREDENTIAL_VARIABLES)
def test_pass_aws_credentials_gives_the_role(platform: Platform, name: str) -> None:
    environment = environment_of(platform, pass_aws_credentials=True)
    assert environment[name] == HOST[name]
    assert environment["AWS_REGION"] == "eu-west-1"
    assert "FUNCTION_CONFIG" not in environment
    assert "SUPERVISOR_STORAGE_ROOT" not in environment


@pytest.mark.parametrize("platform", PLATFORMS)
def test_pass_aws_credentials_gives_nothing_else(platform: Platform) -> None:
    without = environment_of(platform)
    given = environment_of(platform, pass_aws_credentials=True)
    extra = set(AWS_CREDENTIAL_VARIABLES) | ({"AWS_REGION", "AWS_DEFAULT_REGION"} - set(without))
    assert set(given) - set(without) == extra


@pytest.mark.parametrize(
    ("frozen", "host", "expected"),
    [
        pytest.param(
            True,
            {"LD_LIBRARY_PATH": "/tmp/_MEIabc", "LD_LIBRARY_PATH_ORIG": "/usr/local/cuda/lib64"},
            "/usr/local/cuda/lib64",
            id="frozen-the-original",
        ),
        pytest.param(True, {"LD_LIBRARY_PATH": "/tmp/_MEIabc"}, None, id="frozen-there-was-none"),
        pytest.param(
            True,
            {"LD_LIBRARY_PATH": "/tmp/_MEIabc", "LD_LIBRARY_PATH_ORIG": ""},
            None,
            id="frozen-empty-original",
        ),
        pytest.param(
            False,
            {"LD_LIBRARY_PATH": "/opt/lib", "LD_LIBRARY_PATH_ORIG": "/usr/lib/orig"},
            "/opt/lib",
            id="not-frozen-as-is",
        ),
        pytest.param(False, {}, None, id="not-frozen-none"),
    ],
)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_library_path_of_a_frozen_binary(
    platform: Platform, frozen: bool, host: Mapping[str, str], expected: str | None
) -> None:
    environment = environment_of(platform, environ=host, frozen=frozen)
    assert environment.get("LD_LIBRARY_PATH") == expected
    assert "LD_LIBRARY_PATH_ORIG" not in environment


@pytest.mark.parametrize("platform", PLATFORMS)
def test_definition_variables_reach_the_script_everywhere(platform: Platform) -> None:
    variables = {"MODEL": "yolo", "PATH": "/opt/tool/bin", "AWS_ACCESS_KEY_ID": "the-functions"}
    environment = environment_of(platform, variables=variables)
    assert {name: environment[name] for name in variables} == variables


@pytest.mark.parametrize("platform", PLATFORMS)
def test_contract_variables_win_over_the_host_and_the_definition(platform: Platform) -> None:
    forged = {name: "forged" for name in CONTRACT_VARIABLES}
    environment = environment_of(platform, environ={**HOST, **forged}, variables=forged)
    assert {name: environment[name] for name in CONTRACT_VARIABLES} == CONTRACT


@pytest.mark.parametrize("platform", PLATFORMS)
def test_tmpdir_is_the_invocations_folder(platform: Platform) -> None:
    assert environment_of(platform, environ={"TMPDIR": "/tmp"})["TMPDIR"] == str(TMP_DIR)


@pytest.mark.parametrize(
    ("host", "expected_path"),
    [
        ({}, "/usr/local/bin:/usr/bin:/bin"),
        ({"HOME": "/root"}, "/usr/local/bin:/usr/bin:/bin"),
        ({"PATH": "/custom/bin"}, "/custom/bin"),
    ],
)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_path(platform: Platform, host: Mapping[str, str], expected_path: str) -> None:
    assert environment_of(platform, environ=host)["PATH"] == expected_path


def test_no_input_file() -> None:
    facts = replace(FACTS, input_file=None)
    assert environment_of("lambda-zip", facts=facts)["INPUT_FILE_PATH"] == ""


@pytest.mark.parametrize(
    ("variables", "query", "expected"),
    [
        ({}, {"size": "10"}, {"CONT_VAR_size": "10"}),
        ({}, {"out-format": "png"}, {"CONT_VAR_out_format": "png"}),
        ({}, {"a b/c;d$": "x"}, {"CONT_VAR_a_b_c_d_": "x"}),
        ({}, {"ÿname": "x"}, {"CONT_VAR__name": "x"}),
        ({}, {"admin": "no"}, {"CONT_VAR_admin": "no"}),
        ({"A": "1"}, {"A": "2"}, {"A": "1", "CONT_VAR_A": "2"}),
        ({"CONT_VAR_size": "1"}, {"size": "2"}, {"CONT_VAR_size": "2"}),
        ({}, {"nul": "a\0b"}, {"CONT_VAR_nul": "ab"}),
        ({"V": "x\0"}, {}, {"V": "x"}),
    ],
)
def test_variables_and_query(
    variables: Mapping[str, str], query: Mapping[str, str], expected: Mapping[str, str]
) -> None:
    facts = replace(FACTS, query=query)
    environment = environment_of("batch", facts=facts, variables=variables)
    for name, value in expected.items():
        assert environment[name] == value


def test_query_without_a_name_is_skipped() -> None:
    facts = replace(FACTS, query={"": "x"})
    assert "CONT_VAR_" not in environment_of("lambda-zip", facts=facts)


def test_query_names_that_collapse_into_one_variable_are_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    facts = replace(FACTS, query={"a-b": "1", "size": "9", "a.b": "2", "a_b": "3"})
    with caplog.at_level("WARNING", logger="supervisor.environment"):
        environment = environment_of("lambda-zip", facts=facts)
    assert environment["CONT_VAR_a_b"] == "3"
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == [
        "The query parameters 'a-b', 'a.b', 'a_b' all become CONT_VAR_a_b: "
        "the script gets the value of 'a_b'"
    ]


def test_distinct_query_names_warn_of_nothing(caplog: pytest.LogCaptureFixture) -> None:
    facts = replace(FACTS, query={"a-b": "1", "A-B": "2"})
    with caplog.at_level("WARNING", logger="supervisor.environment"):
        environment = environment_of("lambda-zip", facts=facts)
    assert (environment["CONT_VAR_a_b"], environment["CONT_VAR_A_B"]) == ("1", "2")
    assert caplog.records == []


def test_no_value_holds_a_nul() -> None:
    facts = replace(FACTS, event_json='{"a": "\0"}', object_key="k\0y")
    environment = environment_of("batch", environ={**HOST, "IMAGE_VAR": "a\0b"}, facts=facts)
    assert all("\0" not in value for value in environment.values())
    assert environment["STORAGE_OBJECT_KEY"] == "ky"


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    ("event_json", "in_variable"),
    [
        ("x" * EVENT_LIMIT, True),
        ("x" * (EVENT_LIMIT + 1), False),
        ("\u00e9" * (EVENT_LIMIT // 2), True),
        ("\u00e9" * (EVENT_LIMIT // 2) + "x", False),
        ("\U0001f600" * (EVENT_LIMIT // 4 + 1), False),
    ],
)
def test_an_event_over_the_limit_is_only_in_its_file(
    platform: Platform, event_json: str, in_variable: bool
) -> None:
    """EVENT_FILE always; EVENT only when it fits (in UTF-8 bytes), never the host's or the
    definition's EVENT in its place."""
    facts = replace(FACTS, event_json=event_json)
    host = {**HOST, "EVENT": '{"the": "job\'s whole event"}'}
    environment = environment_of(platform, environ=host, facts=facts, variables={"EVENT": "mine"})
    assert environment["EVENT_FILE"] == "/tmp/req/event.json"
    if in_variable:
        assert environment["EVENT"] == event_json
    else:
        assert "EVENT" not in environment
    assert event_fits(event_json) is in_variable


@pytest.mark.parametrize("name", ["", "A=B", "A\0B"])
def test_invalid_variable_name(name: str) -> None:
    with pytest.raises(ExecutionError, match="variable name"):
        environment_of("lambda-zip", variables={name: "x"})


def test_a_fresh_dict_each_time() -> None:
    host = dict(HOST)
    first = environment_of("batch", environ=host)
    first["EXTRA"] = "1"
    assert "EXTRA" not in environment_of("batch", environ=host)
    assert host == HOST


def test_build_environment_applies_the_policy_of_its_platform() -> None:
    arguments: dict[str, Any] = {
        "environ": HOST,
        "input_file": FACTS.input_file,
        "input_dir": FACTS.input_dir,
        "output_dir": FACTS.output_dir,
        "object_key": FACTS.object_key,
        "event_time": FACTS.event_time,
        "event_json": FACTS.event_json,
        "request_id": FACTS.request_id,
        "instance_ip": FACTS.instance_ip,
        "variables": {"MODEL": "yolo"},
        "query": {"size": "10"},
        "tmp_dir": TMP_DIR,
        "event_file": FACTS.event_file,
        "frozen": False,
    }
    facts = replace(FACTS, query={"size": "10"})
    for platform in PLATFORMS:
        assert build_environment(**arguments, platform=platform) == environment_of(
            platform, facts=facts, variables={"MODEL": "yolo"}
        )
    # Without a platform, the strictest: Lambda's.
    assert build_environment(**arguments) == environment_of(
        "lambda-zip", facts=facts, variables={"MODEL": "yolo"}
    )


def test_a_script_sees_the_same_locally_and_in_a_local_batch_job(tmp_path: Path) -> None:
    host = local_environ(HOST, "/opt/venv/bin/python3")
    job = {
        **definition_environment(
            "name: fn\n", script="ZWNobyBoaQo=", storage_root=tmp_path, environ=host
        ),
        # The job's overrides and id, as the local Batch backend adds them.
        "EVENT": FACTS.event_json,
        "CONTEXT": '{"aws_request_id": "req-1"}',
        "AWS_LAMBDA_REQUEST_ID": "req-1",
        "SUPERVISOR_BATCH_JOB_ID": "local-job",
    }
    assert environment_of("batch", environ=job) == environment_of("local", environ=host)
    assert base64.b64decode(job["FUNCTION_CONFIG"]) == b"name: fn\n"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/usr/bin:/bin", "/opt/venv/bin:/usr/bin:/bin"),
        ("/opt/venv/bin:/usr/bin", "/opt/venv/bin:/usr/bin"),
        (None, "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"),
    ],
)
def test_local_runs_put_their_python_first(path: str | None, expected: str) -> None:
    environ = {} if path is None else {"PATH": path}
    host = local_environ(environ, "/opt/venv/bin/python3")
    assert host["PATH"] == expected
    assert environ == ({} if path is None else {"PATH": path})


def test_the_definitions_overrides_are_supervisor_settings() -> None:
    assert set(reading._OVERRIDES) <= set(SUPERVISOR_SETTINGS)


def test_log_redaction_takes_its_names_from_the_policy() -> None:
    environ = {name: f"{name.lower()}-value" for name in SECRET_VARIABLES}
    assert set(logs.secrets_from_environ(environ)) == set(environ.values())
    assert set(SECRET_VARIABLES) - {"OSCAR_SERVICE_TOKEN"} <= set(AWS_CREDENTIAL_VARIABLES)

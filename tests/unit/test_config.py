"""Loading and validating the function definition."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from supervisor.config import load_config, load_host_facts, parse_config
from supervisor.errors import ConfigError

DEFINITION = """\
name: thumbnails
execution_mode: lambda-batch
init_script: script.sh
container:
  image: grycap/imagemagick
  timeout_threshold: 5
  environment:
    Variables:
      WIDTH: 640
      FAST: true
input:
  - storage_provider: s3
    path: uploads/incoming/
output:
  - storage_provider: s3.archive
    path: results/images
    suffix: [.jpg, .png]
  - storage_provider: minio.lab
    path: lab-bucket
    prefix: thumb-
storage_providers:
  s3:
    archive: {access_key: AKIAARCHIVE000000001, secret_key: archive-secret-value, region: eu-west-1}
  minio:
    lab:
      endpoint: "http://minio.lab:9000"
      verify: false
      access_key: lab
      secret_key: lab-secret-value
batch:
  multi_node_parallel: {enabled: true}
  delegate_on: [timeout]
"""

NO_FILE = Path("/nonexistent/function_config.yaml")


def test_full_definition(tmp_path: Path) -> None:
    path = tmp_path / "function.yaml"
    path.write_text(DEFINITION)
    config = load_config({}, path)
    assert config.name == "thumbnails"
    assert config.execution_mode == "lambda-batch"
    assert config.init_script == tmp_path / "script.sh"
    assert config.timeout_threshold == 5
    assert config.container.environment.variables == {"WIDTH": "640", "FAST": "true"}
    assert config.input[0].bucket == "uploads"
    assert config.input[0].folder == "incoming"
    assert config.output[0].provider_type == "s3"
    assert config.output[0].provider_id == "archive"
    assert config.output[0].suffix == (".jpg", ".png")
    assert config.output[1].prefix == ("thumb-",)
    assert config.output[1].folder == ""
    assert config.batch.multi_node_parallel.enabled
    assert config.batch.delegate_on == ("timeout",)
    assert config.job_queue == config.job_definition == "thumbnails"
    assert set(config.storage_providers.secrets()) >= {"archive-secret-value", "lab-secret-value"}
    assert "archive-secret-value" not in repr(config)


@pytest.mark.parametrize("variable", ["FUNCTION_CONFIG", "FDL"])
@pytest.mark.parametrize("encode", [True, False])
def test_definition_from_environment(variable: str, encode: bool) -> None:
    text = DEFINITION if not encode else base64.b64encode(DEFINITION.encode()).decode()
    config = load_config({variable: text}, default_path=NO_FILE)
    assert config.name == "thumbnails"


def test_json_definition() -> None:
    text = json.dumps({"name": "f", "execution_mode": "batch"})
    assert load_config({"FDL": text}, default_path=NO_FILE).execution_mode == "batch"


def test_file_wins_over_environment(tmp_path: Path) -> None:
    path = tmp_path / "function_config.yaml"
    path.write_text("name: from-file\n")
    config = load_config({"FUNCTION_CONFIG": "name: from-env\n"}, default_path=path)
    assert config.name == "from-file"


def test_environment_overrides() -> None:
    environ = {
        "FUNCTION_CONFIG": DEFINITION,
        "LOG_LEVEL": "debug",
        "EXECUTION_MODE": "batch",
        "TIMEOUT_THRESHOLD": "1.5",
    }
    config = load_config(environ, default_path=NO_FILE)
    assert (config.log_level, config.execution_mode, config.timeout_threshold) == (
        "DEBUG",
        "batch",
        1.5,
    )


def test_defaults() -> None:
    config = parse_config("name: f")
    assert config.execution_mode == "lambda"
    assert config.timeout_threshold == 2.0
    assert config.batch.delegate_on == ("timeout", "failure", "resources")
    assert not config.file_stage_in


def test_delegate_on_may_name_resources_and_rejects_others_listing_the_choices() -> None:
    config = parse_config("name: f\nbatch: {delegate_on: [timeout, resources]}")
    assert config.batch.delegate_on == ("timeout", "resources")
    with pytest.raises(ConfigError) as caught:
        parse_config("name: f\nbatch: {delegate_on: [memory]}")
    message = str(caught.value)
    assert "batch.delegate_on[0]: 'memory'" in message
    assert "'resources'" in message


def test_no_definition_says_where_it_looks() -> None:
    with pytest.raises(ConfigError, match="FUNCTION_CONFIG or FDL"):
        load_config({}, default_path=NO_FILE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("execution_mode: lambda", "name: missing"),
        ("name: f\nexecution_mode: cloud", "execution_mode: 'cloud' is invalid"),
        ("name: f\ncontainer: {timeout_threshold: soon}", "container.timeout_threshold: 'soon'"),
        ("name: f\ncontainer: {timeout_threshold: -1}", "greater than or equal to 0"),
        ("name: f\ninput: [{storage_provider: ftp, path: b}]", "input[0].storage_provider: 'ftp'"),
        ("name: f\noutput: [{path: /}]", "output[0].path: '/' is invalid"),
        ("name: f\noutput: [{path: b/../c}]", "output[0].path"),
        ("name: f\nbatch: {delegate_on: [always]}", "batch.delegate_on[0]: 'always'"),
        ("name: f\nlog_level: loud", "log_level: 'LOUD' is invalid"),
        ("- just a list", "expected a mapping"),
        ("name: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_definitions_name_key_and_value(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert expected in str(caught.value)


def test_secret_values_are_not_echoed_in_errors() -> None:
    text = "name: f\nstorage_providers: {s3: {x: {access_key: [no-such-secret-shape]}}}"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert "no-such-secret-shape" not in str(caught.value)
    assert "storage_providers.s3.x.access_key" in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "platform"),
    [
        ({"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}, "lambda-zip"),
        ({"AWS_EXECUTION_ENV": "AWS_Lambda_Image"}, "lambda-image"),
        ({"AWS_BATCH_JOB_ID": "1234"}, "batch"),
        ({}, "local"),
    ],
)
def test_platform(environ: dict[str, str], platform: str) -> None:
    assert load_host_facts(environ).platform == platform

"""The walk that names the keys of a definition that nothing reads, and what strict mode refuses."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from supervisor.checks import FOREIGN_KEYS, definition_problems, fdl_problems, unknown_keys
from supervisor.config import parse_config
from supervisor.errors import ConfigError


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("outputs: []", "unknown key 'outputs' (did you mean 'output'?)"),
        (
            "output: [{path: b, sufix: [.csv]}]",
            "output[0]: unknown key 'sufix' (did you mean 'suffix'?)",
        ),
        (
            "input: [{path: a}, {path: b, storage_provder: s3}]",
            "input[1]: unknown key 'storage_provder' (did you mean 'storage_provider'?)",
        ),
        (
            "storage_providers: {s3: {mine: {acess_key: x}}}",
            "storage_providers.s3.mine: unknown key 'acess_key' (did you mean 'access_key'?)",
        ),
        ("storage_providers: {ftp: {}}", "storage_providers: unknown key 'ftp'"),
        (
            "container: {environment: {Variabls: {A: b}}}",
            "container.environment: unknown key 'Variabls' (did you mean 'Variables'?)",
        ),
        (
            "container: {timeout_treshold: 5}",
            "container: unknown key 'timeout_treshold' (did you mean 'timeout_threshold'?)",
        ),
        (
            "batch: {multi_node_parallel: {enable: true}}",
            "batch.multi_node_parallel: unknown key 'enable' (did you mean 'enabled'?)",
        ),
        ("idempotency: {tabel: t}", "idempotency: unknown key 'tabel' (did you mean 'table'?)"),
        ("udocker: {exec_mode: P1}", "udocker: unknown key 'exec_mode' (did you mean 'execmode'?)"),
        ("zzz: 1", "unknown key 'zzz'"),
    ],
)
def test_an_unknown_key_is_named_with_its_path_and_the_closest_valid_key(
    definition: str, expected: str
) -> None:
    assert unknown_keys({"name": "f", **yaml.safe_load(f"{{{definition}}}")}) == [expected]


@pytest.mark.parametrize(
    "definition",
    [
        # Free-form: the script's variables, the providers' IDs.
        {"container": {"environment": {"Variables": {"anything": 1, "outputs": 2}}}},
        {"storage_providers": {"minio": {"any.id-at_all": {"endpoint": "http://m"}}}},
        {"container": {"environment": {"variables": {"A": "b"}}}},
        # SCAR 4.3.1's own keys in its lambda and batch sections.
        {
            "memory": 512,
            "timeout": 300,
            "runtime": "python3.12",
            "handler": "f.lambda_handler",
            "layers": [],
            "supervisor": {"version": "1.5.8", "layer_name": "faas-supervisor"},
            "deployment": {"max_payload_size": 52428800},
            "environment": {"Variables": {"FDL": "x"}},
            "container": {"extra_payload": "/var/task", "init_script": "/var/task/s.sh"},
            "batch": {
                "vcpus": 1,
                "memory": 1024,
                "enable_gpu": True,
                "compute_resources": {"max_v_cpus": 2},
                "multi_node_parallel": {"enabled": False, "number_nodes": 10},
            },
        },
        # OSCAR's: its service, a StorageIOConfig's options.
        {
            "cluster_id": "c",
            "cpu": "0.2",
            "script": "echo",
            "expose": {"min_scale": 0},
            "synchronous": {"min_scale": 0},
            "mount": {"storage_provider": "", "path": ""},
            "input": [{"storage_provider": "minio", "path": "b/in", "options": ""}],
        },
    ],
)
def test_free_form_values_and_the_keys_deployment_tools_write_are_known(
    definition: dict[str, Any],
) -> None:
    assert unknown_keys({"name": "f", **definition}) == []


def test_no_foreign_key_shadows_a_key_of_our_own() -> None:
    for model, foreign in FOREIGN_KEYS.items():
        own = {name for name in model.model_fields} | {
            field.alias for field in model.model_fields.values() if field.alias
        }
        assert not own & foreign, model.__name__


def test_the_keys_around_the_functions_of_an_fdl_file_are_checked() -> None:
    data = {
        "functions": {"aws": [{"lambda": {"name": "f"}, "btach": {}}], "ocsar": []},
        "storage_provider": {},
    }
    assert fdl_problems(data) == [
        "unknown key 'storage_provider' (did you mean 'storage_providers'?)",
        "functions: unknown key 'ocsar' (did you mean 'oscar'?)",
        "functions.aws[0]: unknown key 'btach' (did you mean 'batch'?)",
    ]


def test_a_path_starting_with_a_slash_is_a_problem_with_a_hint() -> None:
    data = {"name": "f", "input": [{"path": "/bucket/in"}], "output": [{"path": "b"}]}
    assert definition_problems(data) == [
        "input[0].path: '/bucket/in' starts with '/': write 'bucket/in'"
    ]


def test_strict_parsing_lists_every_mistake_at_once() -> None:
    text = (
        "name: f\noutputs: []\noutput: [{path: /b/out, sufix: [.csv]}]\n"
        "container: {timeout_threshold: x}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, origin="f.yaml", strict=True)
    assert str(caught.value) == (
        "f.yaml: invalid function definition:\n"
        "  container.timeout_threshold: 'x' is invalid: Input should be a valid number, "
        "unable to parse string as a number\n"
        "  unknown key 'outputs' (did you mean 'output'?)\n"
        "  output[0]: unknown key 'sufix' (did you mean 'suffix'?)\n"
        "  output[0].path: '/b/out' starts with '/': write 'b/out'"
    )


def test_lenient_parsing_keeps_the_mistakes_as_warnings_and_reads_the_path() -> None:
    config = parse_config("name: f\noutputs: []\noutput: [{path: /b/out}]\n", origin="env FDL")

    assert config.output[0].path == "b/out"
    assert config.warnings == (
        "env FDL: unknown key 'outputs' (did you mean 'output'?)",
        "env FDL: output[0].path: '/b/out' starts with '/': write 'b/out'",
    )


def test_a_url_for_a_path_is_an_error_in_both_modes_with_a_hint() -> None:
    for strict in (True, False):
        with pytest.raises(ConfigError) as caught:
            parse_config("name: f\ninput: [{path: 's3://bucket/x'}]", strict=strict)
        assert "input[0].path: 's3://bucket/x' is invalid: write 'bucket/x' without 's3://'" in str(
            caught.value
        )


def test_a_strict_fdl_file_names_the_keys_around_its_functions() -> None:
    text = "functions:\n  aws:\n  - lambda: {name: f}\n    btach: {}\n"
    assert parse_config(text).warnings == (
        "definition: functions.aws[0]: unknown key 'btach' (did you mean 'batch'?)",
    )
    with pytest.raises(ConfigError, match=r"functions.aws\[0\]: unknown key 'btach'"):
        parse_config(text, strict=True)

"""The manual: the README's first lines, its links, and the definition reference and JSON
Schema generated from the models, which must cover every key and match the committed file."""

from __future__ import annotations

import importlib.util
import json
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from supervisor.config import FunctionConfig

ROOT = Path(__file__).resolve().parents[2]


def _reference() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("reference", ROOT / "docs/hooks/reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nested(annotation: Any) -> Iterator[tuple[type[BaseModel], str]]:
    """The models a field holds, each with how its keys extend the field's path."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _nested(args[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _nested(arg)
    elif origin is tuple:
        for model, suffix in _nested(args[0]):
            yield model, "[]" + suffix
    elif origin is dict:
        for model, suffix in _nested(args[1]):
            yield model, ".<ID>" + suffix
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, "."


def _keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every key a definition may hold, read from the models themselves."""
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        yield key
        for inner, suffix in _nested(field.annotation):
            yield from _keys(inner, key + suffix)


def test_the_reference_covers_every_key_with_a_description() -> None:
    rows = {key: description for key, _, _, description in _reference().reference_rows()}
    keys = list(_keys(FunctionConfig))
    assert "storage_providers.minio.<ID>.endpoint" in keys
    assert "output[].suffix" in keys
    assert "container.environment.Variables" in keys
    missing = [key for key in keys if key not in rows]
    assert missing == [], f"keys missing from the reference: {missing}"
    undescribed = [key for key in keys if not rows[key]]
    assert undescribed == [], (
        f"fields without a description= in supervisor/config.py: {undescribed}"
    )
    page = _reference().reference_markdown()
    for key in keys:
        assert f"| `{key}` |" in page


def test_the_reference_page_is_filled_in_by_the_hook() -> None:
    reference = _reference()
    source = (ROOT / "docs/definition.md").read_text(encoding="utf-8")
    assert reference.MARKER in source
    page = reference.on_page_markdown(source)
    assert "| `container.timeout_threshold` | number (>= 0, <= 900) | `2.0` |" in page


def test_the_committed_schema_is_what_the_models_generate() -> None:
    committed = (ROOT / "docs/schema/function.json").read_text(encoding="utf-8")
    assert committed == _reference().schema_text(), (
        "docs/schema/function.json is out of date: run python docs/hooks/reference.py"
    )


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((ROOT / "docs/schema/function.json").read_text())
    return schema


@pytest.mark.parametrize(
    "path", ["examples/demo/function.yaml", "examples/embedding/function.yaml"]
)
def test_the_examples_name_the_schema_and_pass_it(path: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../docs/schema/function.json"
    assert (ROOT / path).parent.joinpath(first.partition("=")[2]).resolve() == (
        ROOT / "docs/schema/function.json"
    )
    jsonschema.Draft202012Validator(_schema()).validate(yaml.safe_load(text))


@pytest.mark.parametrize(
    ("definition", "where"),
    [
        ({"name": "f", "execution_mode": "lamda"}, ["execution_mode"]),
        (
            {"name": "f", "container": {"timeout_threshold": "soon"}},
            ["container", "timeout_threshold"],
        ),
        ({"name": "f", "output": [{"storage_provider": "s3"}]}, ["output", 0]),
        ({"execution_mode": "batch"}, []),
    ],
)
def test_the_schema_flags_what_an_editor_should(
    definition: dict[str, Any], where: list[Any]
) -> None:
    errors = list(jsonschema.Draft202012Validator(_schema()).iter_errors(definition))
    assert [list(error.absolute_path) for error in errors] == [where]


def test_the_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    block = lines[lines.index("```sh") : lines.index("```")]
    assert lines.index("```sh") == 2
    assert [line.split()[0:2] for line in block[1:]] == [
        ["./build.sh", "demo"],
        ["./build.sh", "test"],
    ]
    build = (ROOT / "build.sh").read_text(encoding="utf-8")
    assert "\n  demo)\n" in build
    assert "\n  test)\n" in build


def test_the_readme_links_lead_somewhere() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert "docs/definition.md" in local
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []

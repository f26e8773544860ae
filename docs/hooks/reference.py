"""The function definition's reference page and JSON Schema, generated from supervisor.config.

As a mkdocs hook (``hooks:`` in mkdocs.yml) it fills the reference page where it says
``<!-- fields -->`` and adds the audio/video case study from ``examples/av-workflow``.
Run as a script, it writes ``docs/schema/function.json``; ``--check`` only says whether
that file is current.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "docs" / "schema" / "function.json"
CASE_STUDY = ROOT / "examples" / "av-workflow"
MARKER = "<!-- fields -->"

Row = tuple[str, str, str, str]


def function_schema() -> dict[str, Any]:
    """The JSON Schema of one function's definition, as editors read it."""
    from supervisor.config import FunctionConfig

    schema = FunctionConfig.model_json_schema()
    schema["title"] = "serverless-supervisor function definition"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    return json.dumps(function_schema(), indent=2, ensure_ascii=False) + "\n"


def reference_rows() -> list[Row]:
    """(key, type, default, description) for every key, sections before what they hold."""
    schema = function_schema()
    rows: list[Row] = []
    _walk(schema, "", schema.get("$defs", {}), rows)
    return rows


def reference_markdown() -> str:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, kind, default, description in reference_rows():
        cells = (f"`{key}`", kind, default, description)
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def _walk(model: dict[str, Any], prefix: str, defs: dict[str, Any], rows: list[Row]) -> None:
    required = set(model.get("required", ()))
    for name, node in model.get("properties", {}).items():
        key = prefix + name
        default = "required" if name in required else _default(node)
        rows.append((key, _type(node, defs), default, node.get("description", "")))
        inner = _nullable(node)
        sub = _model(inner, defs)
        if sub is not None:
            _walk(sub, key + ".", defs, rows)
        elif inner.get("type") == "array":
            sub = _model(inner.get("items", {}), defs)
            if sub is not None:
                _walk(sub, key + "[].", defs, rows)
        elif inner.get("type") == "object":
            sub = _model(inner.get("additionalProperties") or {}, defs)
            if sub is not None:
                _walk(sub, key + ".<ID>.", defs, rows)


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """The node without its ``null`` alternative (a field that may be unset)."""
    options = [o for o in node.get("anyOf", ()) if o.get("type") != "null"]
    if len(options) == 1:
        return {**node, **options[0]}
    return node


def _model(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    ref = node.get("$ref") or next((o["$ref"] for o in node.get("allOf", ()) if "$ref" in o), None)
    if ref is None:
        return None
    target: dict[str, Any] = defs[ref.rsplit("/", 1)[-1]]
    return target if "properties" in target else None


def _type(node: dict[str, Any], defs: dict[str, Any]) -> str:
    options = node.get("anyOf")
    if options:
        kinds = [_type(option, defs) for option in options if option.get("type") != "null"]
        text = " or ".join(kinds)
        return f"{text}, or null" if len(kinds) < len(options) else text
    if _model(node, defs) is not None:
        return "section"
    if "enum" in node:
        return "one of " + ", ".join(f"`{value}`" for value in node["enum"])
    kind = node.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = node.get("items", {})
        return "list of sections" if _model(items, defs) else f"list of {_type(items, defs)}"
    if kind == "object":
        values = node.get("additionalProperties")
        if isinstance(values, dict) and _model(values, defs) is not None:
            return "mapping of ID to section"
        return (
            f"mapping of name to {_type(values, defs)}" if isinstance(values, dict) else "mapping"
        )
    return kind + _limits(node)


def _limits(node: dict[str, Any]) -> str:
    limits = []
    if "minimum" in node:
        limits.append(f">= {node['minimum']}")
    if "exclusiveMinimum" in node:
        limits.append(f"> {node['exclusiveMinimum']}")
    if "maximum" in node:
        limits.append(f"<= {node['maximum']}")
    if "minLength" in node:
        limits.append("not empty" if node["minLength"] == 1 else f"length >= {node['minLength']}")
    if "pattern" in node:
        limits.append(f"matching `{node['pattern']}`")
    return f" ({', '.join(limits)})" if limits else ""


def _default(node: dict[str, Any]) -> str:
    if "default" not in node:
        return ""
    return f"`{json.dumps(node['default'])}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def on_page_markdown(markdown: str, **_: Any) -> str:
    """mkdocs: put the generated table where a page says ``<!-- fields -->``."""
    return markdown.replace(MARKER, reference_markdown()) if MARKER in markdown else markdown


def on_files(files: Any, config: Any, **_: Any) -> Any:
    """mkdocs: the case study's README (beside its example) becomes the page case-study.md."""
    from mkdocs.structure.files import File

    text = (CASE_STUDY / "README.md").read_text(encoding="utf-8")
    files.append(
        File.generated(config, "case-study.md", content=text.replace("](../../docs/", "]("))
    )
    for image in sorted(CASE_STUDY.rglob("*.png")):
        name = image.relative_to(CASE_STUDY).as_posix()
        files.append(File.generated(config, name, abs_src_path=str(image)))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/schema/function.json.")
    parser.add_argument("--check", action="store_true", help="only say whether it is current")
    args = parser.parse_args(argv)
    text = schema_text()
    current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.is_file() else None
    if args.check:
        if current != text:
            print(f"{SCHEMA_PATH} is out of date: run python docs/hooks/reference.py")
            return 1
        return 0
    if current != text:
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``tune --apply``: write the recommendation into the definition file, with SCAR's keys.

SCAR reads a function's memory size and execution mode from ``memory`` and
``execution_mode`` in its ``lambda`` section; a single-function definition has them at the
top.  The file is edited in place, only at those two values (or by inserting the missing
keys above the section's first key), so that comments, order and quoting stay as they
were; the edited text is parsed again and must give the same definition with only those two
keys changed, or nothing is written.  A JSON file is rewritten as JSON.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from supervisor.errors import ConfigError

__all__ = ["ApplyError", "apply_recommendation"]

_KEYS = ("memory", "execution_mode")
_PLAIN = re.compile(r"[a-z][a-z-]*")  # lambda, batch, lambda-batch: no quotes needed


class ApplyError(ConfigError):
    """The recommendation cannot be written into this file; the message says what to set."""


def apply_recommendation(
    path: Path, function: str | None, memory_mb: int, execution_mode: str
) -> dict[str, Any]:
    """Set ``memory`` and ``execution_mode`` of ``function`` (the only one by default) in the
    definition file ``path``; return the values that were there before (None when absent)."""
    values: dict[str, Any] = {"memory": memory_mb, "execution_mode": execution_mode}
    by_hand = f"set memory: {memory_mb} and execution_mode: {execution_mode} by hand"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplyError(f"cannot read {path}: {exc}; {by_hand}") from None
    data = _parse(text, path, by_hand)
    keys = _section_keys(data, function, path, by_hand)
    section = _section(data, keys)
    before = {key: section.get(key) for key in _KEYS}
    expected = copy.deepcopy(data)
    _section(expected, keys).update(values)
    if _is_json(text):
        edited = json.dumps(expected, indent=2) + "\n"
    else:
        edited = _edit_yaml(text, keys, values, path, by_hand)
    if _parse(edited, path, by_hand) != expected:
        raise ApplyError(f"{path}: could not edit the file safely; {by_hand}")
    _replace(path, edited)
    return before


def _parse(text: str, path: Path, by_hand: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ApplyError(f"{path}: not plain YAML or JSON; {by_hand}") from None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _section_keys(
    data: Any, function: str | None, path: Path, by_hand: str
) -> tuple[str | int, ...]:
    """Where the function's SCAR keys live: ``()`` for a single-function definition,
    ``("functions", "aws", i, "lambda")`` in an FDL file."""
    if not isinstance(data, dict):
        raise ApplyError(f"{path}: expected a mapping of keys; {by_hand}")
    functions = data.get("functions")
    if not isinstance(functions, dict):
        return ()
    entries = functions.get("aws")
    if not isinstance(entries, list):
        raise ApplyError(
            f"{path}: --apply writes SCAR's keys into functions.aws; this file has none "
            f"(an OSCAR service sizes its memory in Kubernetes units); {by_hand}"
        )
    names = [
        str(entry["lambda"].get("name"))
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("lambda"), dict)
    ]
    if function is None and len(names) > 1:
        raise ApplyError(
            f"{path}: defines {len(names)} functions ({', '.join(names)}): "
            "pick one with --function NAME"
        )
    for index, entry in enumerate(entries):
        section = entry.get("lambda") if isinstance(entry, dict) else None
        if isinstance(section, dict) and (function is None or section.get("name") == function):
            return ("functions", "aws", index, "lambda")
    raise ApplyError(f"{path}: no SCAR function {function!r} among {', '.join(names) or 'none'}")


def _section(data: Any, keys: tuple[str | int, ...]) -> dict[str, Any]:
    node = data
    for key in keys:
        node = node[key]
    if not isinstance(node, dict):
        raise ApplyError("the function's section is not a mapping")
    return node


def _edit_yaml(
    text: str, keys: tuple[str | int, ...], values: Mapping[str, Any], path: Path, by_hand: str
) -> str:
    """``text`` with the values replaced where their keys are, the others inserted as block
    mapping lines above the section's first key."""
    node: yaml.Node | None = yaml.compose(text)
    for key in keys:
        node = _child(node, key)
    if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
        raise ApplyError(f"{path}: the function's keys are not a block mapping; {by_hand}")
    edits: list[tuple[int, int, str]] = []
    present: set[str] = set()
    for key_node, value_node in node.value:
        if key_node.value in values:
            present.add(key_node.value)
            if not isinstance(value_node, yaml.ScalarNode):
                raise ApplyError(f"{path}: {key_node.value} is not a plain value; {by_hand}")
            start, end = value_node.start_mark.index, value_node.end_mark.index
            edits.append((start, end, _scalar(values[key_node.value])))
    missing = [key for key in values if key not in present]
    if missing:
        first = node.value[0][0].start_mark
        indent = " " * first.column
        lines = "".join(f"{key}: {_scalar(values[key])}\n{indent}" for key in missing)
        edits.append((first.index, first.index, lines))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node:
    found: yaml.Node | None = None
    if isinstance(key, int) and isinstance(node, yaml.SequenceNode):
        found = node.value[key]
    elif isinstance(node, yaml.MappingNode):
        found = next((value for name, value in node.value if name.value == key), None)
    if found is not None:
        return found
    raise ApplyError(f"cannot find {key!r} in the definition")


def _scalar(value: Any) -> str:
    if isinstance(value, int) or (isinstance(value, str) and _PLAIN.fullmatch(value)):
        return str(value)
    return json.dumps(value)


def _replace(path: Path, text: str) -> None:
    """Write ``text`` over ``path`` atomically, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""How definitions are read and their faults told: YAML read into a ``ConfigError`` on any
fault, and validation errors described one line each, without a value that may hold a
credential (the models' base is ``supervisor.models.Model``).

Messages never quote the text they were read from: PyYAML's and pydantic's errors quote
values, credentials included, so they are rewritten here and raised ``from None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from supervisor.errors import ConfigError

if TYPE_CHECKING:
    import yaml

__all__ = ["describe", "load_yaml"]

# Values under these keys, or under a key with one of these words, are never shown.
_SECRET_SECTIONS: Final = ("storage_providers", "container.environment")
_SECRET_WORDS: Final = ("key", "token", "secret", "password")
_SHOWN_LENGTH: Final = 80


def describe(exc: ValidationError) -> list[str]:
    """One line per error: ``output[0].suffix: 5 is invalid: ...`` or ``name: missing``."""
    lines = []
    for error in exc.errors(include_url=False):
        key = _location(error["loc"]) or "(top level)"
        if error["type"] == "missing":
            lines.append(f"{key}: missing (required)")
            continue
        shown = _shown(key, error.get("input"))
        if len(shown) > _SHOWN_LENGTH:
            shown = shown[: _SHOWN_LENGTH - 3] + "..."
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{key}: {shown} is invalid: {message}")
    return lines


def load_yaml(text: str, origin: str, *, kind: str = "YAML") -> Any:
    """``text`` read by PyYAML's safe loader; ``ConfigError`` naming ``origin`` when it
    cannot be (``kind`` says what the text should have been, for the message)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid {kind}: {_yaml_problem(exc)}") from None
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        # PyYAML's constructors raise these for values it parsed but cannot build: a date
        # like 2001-13-14, a bad !!float or !!timestamp, nesting deeper than Python's stack.
        raise ConfigError(
            f"{origin}: not valid {kind}: a value cannot be read "
            f"({type(exc).__name__}; an impossible date, a bad !!tag or too deep nesting)"
        ) from None


def _location(parts: tuple[int | str, ...]) -> str:
    """``output[0].suffix``: keys joined with dots, list positions in brackets."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _shown(key: str, value: Any) -> str:
    """The invalid value as a message may show it: never one that may hold a credential."""
    if key.startswith(_SECRET_SECTIONS) or any(word in key.lower() for word in _SECRET_WORDS):
        return "<hidden>"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What PyYAML found and where, without its quote of the line (which may hold a secret)."""
    problem = getattr(exc, "problem", None) or "syntax error"
    context = getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{context}: {problem}{where}" if context else f"{problem}{where}"

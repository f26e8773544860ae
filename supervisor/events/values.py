"""What an event may hold, checked where its parts are read: the nesting, UTF-8 text, sizes.

Every check raises ``EventError`` naming where in the event the fault is.
"""

from __future__ import annotations

from typing import Any

from supervisor.errors import EventError

__all__ = ["MAX_DEPTH", "check_depth", "kind_of", "object_etag", "object_size", "utf8"]

# Levels of objects and lists an event may nest: storage and API events use fewer than 10.
MAX_DEPTH = 200


def kind_of(value: Any) -> str:
    """What a JSON value is, for an error message: ``a list``, ``a string``, ``null``..."""
    return {list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def utf8(text: str, where: str) -> str:
    """``text``, if UTF-8 can write it: a lone surrogate (``\\ud800`` in JSON) cannot be
    written to a file, a file name or the script's environment."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EventError(
            f"{where} is not valid Unicode text: it holds the lone surrogate "
            f"U+{ord(text[exc.start]):04X} at character {exc.start}"
        ) from None
    return text


def check_depth(value: Any, where: str) -> None:
    """Refuse objects and lists nested deeper than ``MAX_DEPTH``, walking them without
    recursion (a decoded event may come nested deeper than Python's recursion limit)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise EventError(
                f"{where} is nested too deeply: more than {MAX_DEPTH} levels of objects or lists"
            )
        pending.extend((child, depth + 1) for child in children)


def object_size(value: Any) -> int | None:
    """An object's size as the event gives it, or None where it gives none that can be."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def object_etag(value: Any) -> str | None:
    """An object's ETag as the event gives it, or None."""
    return value if isinstance(value, str) and value else None

"""Escaping of control characters: what is escaped, what is kept, whatever the text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.errors import ConfigError, StagingError
from supervisor.escaping import escape, escape_lines

LONG = "x" * 100  # past the short-text path: the byte-level check runs


@pytest.mark.parametrize("padding", ["", LONG], ids=["short", "long"])
@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain text, tab\there", "plain text, tab\there"),
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x00\x07\x08\x0b\x0c\x1b\x1f\x7f", "\\x00\\x07\\x08\\x0b\\x0c\\x1b\\x1f\\x7f"),
        ("\x80\x85\x9b\x9f", "\\x80\\x85\\x9b\\x9f"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("\u202a\u202e\u2066\u2069", "\\u202a\\u202e\\u2066\\u2069"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        (
            "caf\u00e9 \u20ac \u2026 \u00a0 \u4e2d \U0001f600",
            "caf\u00e9 \u20ac \u2026 \u00a0 \u4e2d \U0001f600",
        ),
        ("back\\slash", "back\\slash"),
    ],
)
def test_escape(padding: str, text: str, escaped: str) -> None:
    assert escape(padding + text) == padding + escaped


@pytest.mark.parametrize("padding", ["", LONG], ids=["short", "long"])
def test_escape_lines_keeps_the_newlines_only(padding: str) -> None:
    text = padding + "one\r\ntwo\x1b[2K\n\u2028three"
    assert escape_lines(text) == padding + "one\\r\ntwo\\x1b[2K\n\\u2028three"


@given(st.text())
def test_escaped_text_is_one_line_and_escaping_again_changes_nothing(text: str) -> None:
    escaped = escape(text)
    assert len(escaped.splitlines()) <= 1
    assert all(char == "\t" or 0x20 <= ord(char) < 0x7F or ord(char) > 0x9F for char in escaped)
    assert escape(escaped) == escaped
    lines = escape_lines(text)
    assert lines.count("\n") == text.count("\n")
    assert all(len(part.splitlines()) <= 1 for part in lines.split("\n"))


def test_error_messages_are_one_line() -> None:
    error = StagingError("cannot download b/in/x\nINFO finished\x1b[2K", key="in/x\n")
    assert str(error) == "cannot download b/in/x\\nINFO finished\\x1b[2K"
    assert error.key == "in/x\n"  # the attribute keeps the key as it is
    config = ConfigError("invalid function definition:\n  name: 'a\rb' is invalid")
    assert str(config) == "invalid function definition:\n  name: 'a\\rb' is invalid"

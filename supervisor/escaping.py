"""Escaping of control characters, so that text from outside stays on its line.

Object keys, request bodies, file names and the script's output end up in log lines and
error messages.  A newline or a carriage return there would start what looks like a line
of the supervisor's own (``INFO supervisor.runtime: ... finished``), and a terminal escape
could rewrite what a person sees.  These functions write such characters as Python does in
``repr``: ``\\n``, ``\\r``, ``\\x1b``, ``\\u2028``.

Escaped: the C0 controls but the tab, DEL, the C1 controls (NEL included), the Unicode line
and paragraph separators, the bidirectional embeddings and overrides (U+202A to U+202E,
U+2066 to U+2069), and lone surrogates.  The tab, printable text and the backslash are kept
as they are (so ``\\n`` in a log line may also be a backslash and an ``n`` of the original).

The check comes first and runs on bytes, as the text of a chatty script goes through here
in blocks of 64 KiB: on text without any of those characters it costs an encode and a
``bytes.translate``, not a regular expression over every character.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["escape", "escape_lines"]

_CONTROLS: Final = "\x00-\x08\x0b-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROL: Final = re.compile(f"[\n{_CONTROLS}]")
_CONTROL_BUT_NEWLINE: Final = re.compile(f"[{_CONTROLS}]")

# Bytes that never need escaping: printable ASCII and the tab (and the newline, by lines).
_PLAIN: Final = bytes(range(0x20, 0x7F)) + b"\t"
_PLAIN_LINES: Final = _PLAIN + b"\n"
_NON_ASCII: Final = bytes(range(0x80, 0x100))
# The escaped characters above U+007F in UTF-8 (lone surrogates as "surrogatepass" writes
# them).  In text with its ASCII bytes deleted, a lead byte is still followed by its own
# continuation bytes, so these match exactly those characters.
_WIDE_CONTROL: Final = re.compile(
    rb"\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]|\xed[\xa0-\xbf]"
)
_SHORT: Final = 64


def escape(text: str) -> str:
    """``text`` on one line: every control character (newlines included) escaped."""
    if not _needs_escaping(text, _PLAIN, _CONTROL):
        return text
    return _CONTROL.sub(_escaped, text)


def escape_lines(text: str) -> str:
    """``text`` with every control character escaped except the newlines that separate
    its lines."""
    if not _needs_escaping(text, _PLAIN_LINES, _CONTROL_BUT_NEWLINE):
        return text
    return _CONTROL_BUT_NEWLINE.sub(_escaped, text)


def _needs_escaping(text: str, plain: bytes, pattern: re.Pattern[str]) -> bool:
    if len(text) <= _SHORT:
        return pattern.search(text) is not None
    rest = text.encode("utf-8", "surrogatepass").translate(None, plain)
    if not rest:
        return False
    if rest.translate(None, _NON_ASCII):  # an ASCII control character
        return True
    return _WIDE_CONTROL.search(rest) is not None


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

"""Logging set-up for the entry points, with credentials redacted from every line.

Library modules only call ``logging.getLogger(__name__)``; the entry points call one of
these functions once per process (the Lambda handler may call it on every invocation):

- ``configure_lambda``: structured JSON lines through an aws-lambda-powertools ``Logger``;
- ``configure_cli``: plain text lines (local runs and Batch jobs);
- ``attach_cloudwatch``: a watchtower handler on top of that, for Batch jobs.

Redaction is a filter on every handler (not on loggers), so that records from any logger,
botocore's DEBUG dumps of signed headers included, go through it whatever their level.

One event, one line: the plain-text formatter escapes control characters (newlines, carriage
returns, terminal escapes: ``supervisor.escaping``) in the whole line, so that a key, a body
or an error message cannot start a line of its own.  Two kinds of record span several
lines, each of them starting with the record's prefix: the script's output (the
``supervisor.script`` logger), logged a block of lines per record so that a chatty script
does not pay for a record per line, and a traceback, whose lines read ``PREFIX | ...``.
The JSON lines of Lambda escape control characters by themselves (``serialize_json`` writes
them as powertools' own serializer does, in less time for a long message).

Routing: the package loggers (``supervisor``, ``handlers``, ``batch_entrypoint``,
``faassupervisor``) are the ones configured; the root logger is never given a handler nor a
level. In Lambda the package loggers stop propagating (the runtime's root handler would
print every line twice) and the root handlers only get the filter. Elsewhere the plain-text
handler sits on the package loggers and on those of the AWS libraries (``LIBRARY_LOGGERS``,
whose levels are left alone, so that they stay at WARNING unless a caller lowers them).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from functools import partial
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, Final, TextIO

from supervisor.distribution import PACKAGES
from supervisor.environment import SECRET_VARIABLES
from supervisor.escaping import escape, escape_lines

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from mypy_boto3_logs import CloudWatchLogsClient

__all__ = [
    "LIBRARY_LOGGERS",
    "LINE_FORMAT",
    "PACKAGE_LOGGERS",
    "SCRIPT_LOGGER",
    "CloudWatchHandle",
    "LineFormatter",
    "RedactingFilter",
    "attach_cloudwatch",
    "configure_cli",
    "configure_lambda",
    "line_formatter",
    "secrets_from_environ",
    "serialize_json",
]

PACKAGE_LOGGERS: Final = PACKAGES
# The AWS libraries' loggers, whose records the plain-text handler prints too (botocore's
# DEBUG dumps, when a caller lowers its level, go through the redacting filter).
LIBRARY_LOGGERS: Final = (
    "aws_lambda_powertools",
    "boto3",
    "botocore",
    "s3transfer",
    "urllib3",
    "watchtower",
)
# A plain-text line: ``2026-11-28T10:00:00Z INFO supervisor.runtime: message``.
LINE_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Its records hold lines of the script's output, one per line of the message.
SCRIPT_LOGGER: Final = "supervisor.script"
REDACTED: Final = "***"
MIN_SECRET_LENGTH: Final = 4

# Credentials that botocore prints at DEBUG even when their value was not handed to us
# (role credentials fetched at run time): the SigV4 access key id and signature, and the
# session token, in header dicts, canonical requests and presigned URLs.
# Each with a word that a text must hold for the pattern to match (the last one in any case,
# hence in lower case, and only where the text holds a dash): looking for it first spares a
# regular expression, or a lower-case copy, over every block of the script's output.
_CREDENTIAL_PATTERNS: Final = (
    ("Credential=", re.compile(r"(Credential=)[^\s,'\"&/%]+")),
    ("Signature", re.compile(r"(Signature[=:]\s*)[0-9a-fA-F]{64}")),
)
_TOKEN_HEADER: Final = "x-amz-security-token"  # noqa: S105 (a header name)
_TOKEN_PATTERN: Final = re.compile(
    r"(X-Amz-Security-Token['\"]?\s*[:=]\s*b?['\"]?)[^\s'\"&,;}]+", re.IGNORECASE
)
_KEEP_PREFIX: Final = rf"\g<1>{REDACTED}"

# The JSON of a Lambda log line, as powertools' default serializer writes it.
_DUMPS: Final = partial(json.dumps, default=str, separators=(",", ":"), ensure_ascii=False)
# A message this long has its string written by ``_json_string``.
_LONG_MESSAGE: Final = 1024
# Where the message goes in the JSON of the other keys: a string no record holds.
_MESSAGE_SLOT: Final = f"\x00message-{os.urandom(16).hex()}"
_MESSAGE_SLOT_JSON: Final = json.encoder.encode_basestring(_MESSAGE_SLOT)
# The characters that JSON writes with a backslash of their own (the backslash first).
_JSON_SHORT_ESCAPES: Final = (
    ("\\", "\\\\"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
)
# What is left of a string's UTF-8 without these bytes is a control character that JSON
# writes as ``\u00XX`` (or ``\b``, ``\f``).
_JSON_PLAIN: Final = bytes(range(0x20, 0x100)) + b"\n\r\t"

_RECORD_ATTRIBUTES: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_TRACEBACK_FORMATTER: Final = logging.Formatter()

# Which handlers this module installed, so that a second call replaces them.
_OWNER_ATTRIBUTE: Final = "_supervisor_logs"
_CONSOLE: Final = "console"
_CLOUDWATCH: Final = "cloudwatch"

_CLI_DATE_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_CLOUDWATCH_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"
_CLOUDWATCH_SEND_INTERVAL_S: Final = 5
# watchtower's sender thread calls botocore: its records must not come back to it.
_CLOUDWATCH_EXCLUDED: Final = ("botocore", "urllib3", "watchtower")


class RedactingFilter(logging.Filter):
    """Replace every secret in a record with ``***`` before any handler formats it.

    Covers the message (``msg % args``), the exception text, the stack text and string
    extras; secrets shorter than 4 characters are ignored. The record is rewritten in
    place (the message is pre-formatted and ``args`` cleared), so it can pass any number
    of redacting handlers. An exception whose text held a secret loses its ``exc_info``:
    formatters then print the redacted ``exc_text`` (powertools reads the ``exception``
    and ``exception_name`` extras).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # As the secret may appear: itself, URL-encoded, and escaped as a log line writes it.
        variants = {
            variant
            for secret in secrets
            if len(secret) >= MIN_SECRET_LENGTH
            for variant in (secret, urllib.parse.quote(secret, safe=""), escape(secret))
        }
        self._variants = tuple(sorted(variants, key=len, reverse=True))
        self._literal = (
            re.compile("|".join(map(re.escape, self._variants))) if self._variants else None
        )

    def redact(self, text: str) -> str:
        if self._literal is not None and any(variant in text for variant in self._variants):
            text = self._literal.sub(REDACTED, text)
        for word, pattern in _CREDENTIAL_PATTERNS:
            # Its capital first: a one-character search (memchr) spares most output, in
            # lower case, the slower search for a word.
            if word[0] in text and word in text:
                text = pattern.sub(_KEEP_PREFIX, text)
        if "-" in text and _TOKEN_HEADER in text.lower():
            text = _TOKEN_PATTERN.sub(_KEEP_PREFIX, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        self._redact_message(record)
        self._redact_exception(record)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str | Mapping | list):
                record.__dict__[name] = self._redact_value(value)
        return True

    def _redact_message(self, record: logging.LogRecord) -> None:
        if record.args:
            try:
                text = record.getMessage()
            except Exception:  # a bad format string must not print the raw arguments
                text = f"{record.msg} {record.args!r}"
            record.msg, record.args = self.redact(text), ()
        elif isinstance(record.msg, str | Mapping | list):
            record.msg = self._redact_value(record.msg)
        else:
            text = str(record.msg)
            redacted = self.redact(text)
            if redacted != text:
                record.msg = redacted

    def _redact_exception(self, record: logging.LogRecord) -> None:
        exc_info = record.exc_info
        if exc_info and exc_info[0] is not None:
            text = record.exc_text or _TRACEBACK_FORMATTER.formatException(exc_info)
            redacted = self.redact(text)
            if redacted != text:
                record.exc_info = None
                record.exc_text = redacted
                record.__dict__["exception"] = redacted
                record.__dict__["exception_name"] = exc_info[0].__name__
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {key: self._redact_value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._redact_value(item) for item in value]
        return value


def serialize_json(log: dict[str, Any]) -> str:
    """A Lambda log line: the characters that powertools' default serializer writes
    (``json.dumps`` with ``default=str``, compact separators, ``ensure_ascii=False``), in
    less time when the message is long.

    ``json.dumps`` escapes a string a character at a time; the script's output comes in
    blocks of up to 48 KiB of mostly printable text and newlines, which ``str.replace``
    escapes several times faster.  A string with any other control character is left to
    ``json``'s own function.
    """
    message = log.get("message")
    if not isinstance(message, str) or len(message) < _LONG_MESSAGE:
        return _DUMPS(log)
    before, slot, after = _DUMPS({**log, "message": _MESSAGE_SLOT}).partition(_MESSAGE_SLOT_JSON)
    if not slot:
        return _DUMPS(log)
    if message.encode("utf-8", "surrogatepass").translate(None, _JSON_PLAIN):
        return before + encode_basestring(message) + after
    for char, escaped in _JSON_SHORT_ESCAPES:
        if char in message:
            message = message.replace(char, escaped)
    return "".join((before, '"', message, '"', after))


def secrets_from_environ(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The values of the variables that hold secrets (``environment.SECRET_VARIABLES``) set
    in ``environ``."""
    values = (environ.get(name, "") for name in SECRET_VARIABLES)
    return tuple(dict.fromkeys(value for value in values if len(value) >= MIN_SECRET_LENGTH))


def configure_lambda(level: str, *, service: str, secrets: Iterable[str]) -> Logger:
    """Route the package loggers to a powertools ``Logger``'s JSON handler and return it.

    The package loggers share the powertools handler, hence its formatter: the keys that
    ``Logger.inject_lambda_context`` appends (``function_request_id``, ``cold_start``...)
    appear on their lines too. Calling it again (a warm invocation) replaces, never adds.
    """
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.shared.functions import powertools_dev_is_set

    # POWERTOOLS_DEV asks for indented JSON, which only powertools' serializer writes.
    serializer = None if powertools_dev_is_set() else serialize_json
    logger = Logger(service=service, level=level.upper(), json_serializer=serializer)
    logger.setLevel(level.upper())
    logger.append_keys(name="%(name)s")
    redacting = RedactingFilter(secrets)
    handler = logger.registered_handler
    _set_redacting_filter(handler, redacting)
    _detach(_CONSOLE)
    setattr(handler, _OWNER_ATTRIBUTE, _CONSOLE)
    for name in PACKAGE_LOGGERS:
        package = logging.getLogger(name)
        package.setLevel(logger.log_level)
        package.propagate = False
        if handler not in package.handlers:
            package.addHandler(handler)
    # The Lambda runtime prints the other libraries' records through its own root handler.
    for root_handler in logging.getLogger().handlers:
        _set_redacting_filter(root_handler, redacting)
    return logger


class LineFormatter(logging.Formatter):
    """Plain-text lines that a record's text cannot forge.

    The format must end with ``%(message)s``; what comes before it is the record's prefix.
    A record is one line, its control characters escaped; a record of the script's output
    (``SCRIPT_LOGGER``) is one line per line of its message, each with the prefix; the
    lines of a traceback or a stack follow their record's line as ``PREFIX | line``.
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        record.message = ""
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        prefix = self.formatMessage(record)
        record.message = message
        if record.name == SCRIPT_LOGGER:
            text = prefix + f"\n{prefix}".join(escape_lines(message).split("\n"))
        else:
            text = prefix + escape(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for block in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)):
            if block:
                lines = escape_lines(block.rstrip("\n")).split("\n")
                text += "".join(f"\n{prefix}| {line}" for line in lines)
        return text


def line_formatter() -> LineFormatter:
    """The formatter of ``LINE_FORMAT`` lines, their time in UTC."""
    formatter = LineFormatter(LINE_FORMAT, datefmt=_CLI_DATE_FORMAT)
    formatter.converter = time.gmtime
    return formatter


def configure_cli(level: str, *, secrets: Iterable[str], stream: TextIO | None = None) -> None:
    """Print ``2026-11-28T10:00:00Z INFO supervisor.runtime: message`` lines on ``stream``.

    The package loggers get ``level``; the AWS libraries' loggers keep theirs. ``stream``
    defaults to ``sys.stderr`` as it is at the call. Calling it again replaces the handler.
    """
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(line_formatter())
    handler.addFilter(RedactingFilter(secrets))
    setattr(handler, _OWNER_ATTRIBUTE, _CONSOLE)
    _detach(_CONSOLE)
    for name in PACKAGE_LOGGERS:
        package = logging.getLogger(name)
        package.setLevel(level.upper())
        package.propagate = True
    for logger in _routed_loggers():
        logger.addHandler(handler)


class CloudWatchHandle:
    """The CloudWatch Logs handler of a Batch job: ``close()`` it before the process exits."""

    def __init__(self, handler: logging.Handler, loggers: Iterable[logging.Logger]) -> None:
        self._handler = handler
        self._loggers = tuple(loggers)
        self._closed = False

    @property
    def handler(self) -> logging.Handler:
        return self._handler

    def close(self) -> None:
        """Detach the handler, then send what it still holds; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        for logger in self._loggers:
            logger.removeHandler(self._handler)
        self._handler.close()


def attach_cloudwatch(
    log_group: str,
    stream_name: str,
    *,
    secrets: Iterable[str],
    client: CloudWatchLogsClient | None = None,
) -> CloudWatchHandle:
    """Also send the log lines to CloudWatch Logs ``log_group``/``stream_name``.

    Creates the group if it is missing (one API call here, so errors from botocore are
    raised to the caller); lines are sent in batches by a watchtower thread.
    """
    import watchtower

    if client is None:
        import boto3

        client = boto3.client("logs")
    handler = watchtower.CloudWatchLogHandler(
        log_group_name=log_group,
        log_stream_name=stream_name,
        boto3_client=client,
        create_log_group=True,
        send_interval=_CLOUDWATCH_SEND_INTERVAL_S,
    )
    handler.setFormatter(LineFormatter(_CLOUDWATCH_FORMAT))
    handler.addFilter(_exclude_cloudwatch_senders)
    handler.addFilter(RedactingFilter(secrets))
    setattr(handler, _OWNER_ATTRIBUTE, _CLOUDWATCH)
    loggers = _routed_loggers()
    for logger in loggers:
        logger.addHandler(handler)
    return CloudWatchHandle(handler, loggers)


def _exclude_cloudwatch_senders(record: logging.LogRecord) -> bool:
    return not record.name.startswith(_CLOUDWATCH_EXCLUDED)


def _set_redacting_filter(handler: logging.Handler, redacting: RedactingFilter) -> None:
    for existing in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
        handler.removeFilter(existing)
    handler.addFilter(redacting)


def _routed_loggers() -> list[logging.Logger]:
    """The loggers that this module's handlers sit on: never the root logger."""
    return [logging.getLogger(name) for name in (*PACKAGE_LOGGERS, *LIBRARY_LOGGERS)]


def _detach(owner: str) -> None:
    """Remove the handlers of one kind that this module installed on the routed loggers."""
    for logger in _routed_loggers():
        for handler in [h for h in logger.handlers if getattr(h, _OWNER_ATTRIBUTE, "") == owner]:
            logger.removeHandler(handler)

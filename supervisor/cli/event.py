"""``event``: print a sample event, shaped as AWS or MinIO sends it, for ``run --event``
(``supervisor.sample_events``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from supervisor.cli.exit_codes import EXIT_OK, EXIT_USAGE
from supervisor.cli.options import add_storage_root_option

__all__ = ["add_parser", "print_event"]

_EPILOG = """\
Object events (s3, minio, sqs, sns, eventbridge) announce --key in --bucket; sqs and sns
wrap the S3 notification as a queue or topic subscribed to the bucket delivers it.  The
HTTP kinds (api: API Gateway REST API, api-v2: HTTP API, url: a function URL) carry the
request --method, --path, --query and --body.  Identifiers are made up; the time is now.

examples:
  {prog} event s3 --bucket uploads --key "in/my photo.jpg" \\
      | {prog} run --config function.yaml --event -
  {prog} event api-v2 --body-file request.json --query lang=en > event.json
"""


def add_parser(commands: Any, prog: str) -> None:
    """Add ``event`` to the command line's subcommands."""
    from supervisor.sample_events import KINDS

    parser = commands.add_parser(
        "event",
        help="print a sample event (S3, MinIO, SQS, SNS, EventBridge, API, function URL)",
        description="Print a sample event, shaped as AWS or MinIO sends it, for `run --event`.",
        epilog=_EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=KINDS, metavar="KIND", help=f"one of: {', '.join(KINDS)}")
    _add_object_arguments(parser)
    _add_request_arguments(parser)
    parser.set_defaults(command="event", handler=print_event)


def _add_object_arguments(parser: argparse.ArgumentParser) -> None:
    """What an object event announces: the bucket, the key, the size, the region."""
    from supervisor.sample_events import Sample

    defaults = Sample()
    parser.add_argument(
        "--bucket", default=defaults.bucket, help=f"the bucket (default: {defaults.bucket})"
    )
    parser.add_argument(
        "--key",
        default=defaults.key,
        help=f"the object's key, as stored, spaces and all (default: {defaults.key})",
    )
    parser.add_argument(
        "--size",
        type=_size,
        help="the object's size in bytes (default: the size of --storage-root/BUCKET/KEY "
        f"when it is there, else {defaults.size})",
    )
    add_storage_root_option(parser)
    parser.add_argument(
        "--region", default=defaults.region, help=f"the AWS region (default: {defaults.region})"
    )


def _add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """What an HTTP event carries: the method, the path, the query and the body."""
    from supervisor.sample_events import Sample

    defaults = Sample()
    parser.add_argument(
        "--method", default=defaults.method, help=f"the HTTP method (default: {defaults.method})"
    )
    parser.add_argument(
        "--path", default=defaults.path, help=f"the request path (default: {defaults.path})"
    )
    parser.add_argument(
        "--query",
        action="append",
        default=[],
        type=_query,
        metavar="NAME=VALUE",
        help="a query string parameter (the script sees it as CONT_VAR_NAME); repeat for more",
    )
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--body", help="the request body, as text")
    body.add_argument(
        "--body-file", type=Path, help="the request body: this file (base64 when it is not text)"
    )


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more bytes, got {value}")
    return value


def _query(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def print_event(args: argparse.Namespace) -> int:
    """Print the sample event as JSON; exit 2 for a bucket or key that names no object."""
    from supervisor.sample_events import Sample, generate

    problem = _object_problem(args.bucket, args.key)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    body = _body(args)
    if body is None:
        return EXIT_USAGE
    sample = Sample(
        bucket=args.bucket,
        key=args.key,
        size=_object_size(args),
        region=args.region,
        method=args.method.upper(),
        path=args.path if args.path.startswith("/") else f"/{args.path}",
        query=dict(args.query),
        body=body,
    )
    print(json.dumps(generate(args.kind, sample), indent=2))
    return EXIT_OK


def _object_problem(bucket: str, key: str) -> str:
    """Why the bucket and key name no object ("" when they do)."""
    if not bucket or "/" in bucket:
        return f"--bucket {bucket!r} is not a bucket name"
    if not key or key.endswith("/"):
        what = "a folder (it ends in /)" if key else "empty"
        return f"--key {key!r} is {what}: name an object"
    return ""


def _body(args: argparse.Namespace) -> bytes | None:
    """The request body: --body-file's bytes or --body's text; None (said on standard
    error) when the file cannot be read."""
    if args.body_file is None:
        text: str = args.body or ""
        return text.encode("utf-8", errors="surrogateescape")
    try:
        data: bytes = args.body_file.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.body_file}: {exc.strerror}", file=sys.stderr)
        return None
    return data


def _object_size(args: argparse.Namespace) -> int:
    """--size, else the size of the object under --storage-root, else the sample's."""
    from supervisor.sample_events import Sample

    if args.size is not None:
        size: int = args.size
        return size
    stored = args.storage_root / args.bucket / args.key
    try:
        return stored.stat().st_size if stored.is_file() else Sample.size
    except (OSError, ValueError):
        return Sample.size

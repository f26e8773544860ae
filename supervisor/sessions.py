"""AWS sessions: one botocore session per supervisor, shared by all of its clients.

A client's service model and the endpoint data (partitions, rules) are read through its
session's loader, which keeps them: a second session reads and holds them all again, some
15 ms and 12 MiB per client.  ``Sessions`` creates the botocore session on first use, so
that a ``batch``-mode function imports botocore alone (no boto3, no s3transfer), and the
boto3 session over it that the S3 providers take.

The session reads its models through ``shortcuts.fast_loader``.  ``create_client``
makes a client with the timeouts and retries of a component that counts its own (Batch,
DynamoDB), from the supervisor's session when it is given one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boto3.session import Session as Boto3Session
    from botocore.session import Session as BotocoreSession

__all__ = ["Sessions", "create_client"]


class Sessions:
    """The botocore session of one supervisor, and the boto3 session over it, both lazy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._botocore: BotocoreSession | None = None
        self._boto3: Boto3Session | None = None

    def botocore(self) -> BotocoreSession:
        with self._lock:
            if self._botocore is None:
                import botocore.session

                from supervisor.shortcuts import fast_loader

                session = botocore.session.get_session()
                session.register_component("data_loader", fast_loader(session))
                self._botocore = session
            return self._botocore

    def boto3(self) -> Boto3Session:
        session = self.botocore()
        with self._lock:
            if self._boto3 is None:
                import boto3.session

                self._boto3 = boto3.session.Session(botocore_session=session)
            return self._boto3


def create_client(
    service: str,
    *,
    session: Callable[[], BotocoreSession] | None = None,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
) -> Any:
    """A botocore client of ``service`` (botocore alone: boto3 would import s3transfer too).

    From ``session``, the supervisor's botocore session, when given; else from a
    ``Sessions`` of its own.  ``max_attempts`` counts the first attempt, in botocore's
    standard retry mode.
    """
    from botocore.config import Config

    botocore_session = session() if session is not None else Sessions().botocore()
    return botocore_session.create_client(
        service,
        config=Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": max_attempts},
        ),
    )

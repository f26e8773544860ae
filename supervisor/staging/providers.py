"""Storage providers: moving one object between a bucket and a local file.

``StorageProvider`` is what the staging functions need from a store.  Two implement it:

- ``S3Storage``: any S3-compatible endpoint (AWS S3, MinIO) through s3transfer, which
  streams to disk, splits big objects into parts and runs the transfers of one call in
  parallel through one ``TransferManager`` with a bounded number of requests.
- ``LocalStorage``: a folder holding one subfolder per bucket, the embedded default of a
  local run.  Every path stays inside the folder and every write is atomic.

``WebdavStorage`` (in ``webdav``) is the third.  ``UnsupportedStorage`` stands for a
provider a definition may name but no transfer here can reach (Onedata, Rucio): each of
its transfers raises ``StagingError`` saying so.

Provider errors become ``StagingError`` (with ``raise ... from``) naming the object on one
line, never a credential or a request URL; a transfer that outlives its ``timeout`` raises
``DeadlineError``.  When ``upload_many`` fails, the error's ``uploaded`` names the items it
did store; a failed item leaves no object (s3transfer aborts a failed multipart upload).
s3transfer and botocore are imported by ``S3Storage`` itself, never at module import.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast
from urllib.parse import urlsplit

from supervisor.errors import DeadlineError, StagingError, UnsafeKeyError
from supervisor.events import object_created

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError
    from mypy_boto3_s3 import S3Client
    from s3transfer.futures import TransferFuture
    from s3transfer.manager import TransferManager
    from s3transfer.subscribers import BaseSubscriber

__all__ = [
    "LocalStorage",
    "S3Storage",
    "StorageProvider",
    "UnsupportedStorage",
    "UploadItem",
    "notify",
]

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
# Bytes read from a download's body per write, and writes queued for the disk at most.
IO_CHUNK = 64 * 1024
IO_QUEUE = 64


class UploadItem(NamedTuple):
    """A local file to store as ``key`` in ``bucket``."""

    source: Path
    bucket: str
    key: str


class StorageProvider(Protocol):
    """A store of objects addressed by bucket and key."""

    def uri(self, bucket: str, key: str) -> str:
        """Where the object is, for logs and responses (``s3://bucket/key`` or a file path)."""
        ...

    def download(
        self,
        bucket: str,
        key: str,
        dest: Path,
        *,
        timeout: float | None = None,
        size: int | None = None,
        etag: str | None = None,
    ) -> None:
        """Write the object to ``dest``; raise ``DeadlineError`` after ``timeout`` seconds.

        ``size`` and ``etag``, when the event gave them, may spare a request for them.
        """
        ...

    def upload_many(
        self, items: Sequence[UploadItem], *, timeout: float | None = None
    ) -> list[str]:
        """Store every item (in parallel where the store allows); return their URIs in order."""
        ...


class _Completion:
    """An s3transfer subscriber counting finished transfers, so that waiting can time out."""

    def __init__(self, count: int) -> None:
        self._remaining = count
        self._condition = threading.Condition()

    def on_done(self, future: TransferFuture, **kwargs: Any) -> None:
        with self._condition:
            self._remaining -= 1
            self._condition.notify_all()

    def wait(self, timeout: float | None) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: self._remaining <= 0, timeout)


class _Known:
    """An s3transfer subscriber that gives a download the object's size and ETag up front."""

    def __init__(self, size: int, etag: str) -> None:
        self._size = size
        self._etag = etag

    def on_queued(self, future: TransferFuture, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self._size)
        future.meta.provide_object_etag(self._etag)


class _Transfer(NamedTuple):
    future: TransferFuture
    local: Path
    bucket: str
    key: str


class S3Storage:
    """An S3-compatible store reached through one boto3 client."""

    def __init__(
        self,
        client: S3Client,
        *,
        max_concurrency: int = 10,
        multipart_threshold: int = 8 * MIB,
        multipart_chunksize: int = 8 * MIB,
    ) -> None:
        from s3transfer.manager import TransferConfig

        self.client = client
        self._config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_request_concurrency=max_concurrency,
            # What a download may hold in memory between the network and the disk: s3transfer
            # queues up to 1,000 chunks of 256 KiB by default, which a fast network and a slow
            # disk (or the GIL) can fill.  Small chunks also stay in the allocator's heap, where
            # they are reused, instead of fragmenting one arena per transfer thread.
            io_chunksize=IO_CHUNK,
            max_io_queue_size=IO_QUEUE,
        )

    def uri(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    def download(
        self,
        bucket: str,
        key: str,
        dest: Path,
        *,
        timeout: float | None = None,
        size: int | None = None,
        etag: str | None = None,
    ) -> None:
        from s3transfer.manager import TransferManager

        done = _Completion(1)
        subscribers = [_subscriber(done)]
        if size is not None and etag and size < self._config.multipart_threshold:
            # A small object is one plain GET, which reads whatever the key holds now; told
            # its size and ETag, s3transfer skips the HEAD it would make to learn them (a
            # round trip).  A bigger one keeps the HEAD: its ranged GETs need the current ETag.
            subscribers.append(_subscriber(_Known(size, etag)))
        manager = TransferManager(self.client, self._config)
        try:
            future = manager.download(bucket, key, str(dest), subscribers=subscribers)
        except BaseException:
            _abandon(manager)
            raise
        self._finish(manager, done, timeout, [_Transfer(future, dest, bucket, key)], "download")

    def upload_many(
        self, items: Sequence[UploadItem], *, timeout: float | None = None
    ) -> list[str]:
        from s3transfer.manager import TransferManager

        if not items:
            return []
        done = _Completion(len(items))
        subscribers = [_subscriber(done)]
        manager = TransferManager(self.client, self._config)
        transfers = []
        try:
            for source, bucket, key in items:
                future = manager.upload(str(source), bucket, key, subscribers=subscribers)
                transfers.append(_Transfer(future, source, bucket, key))
        except BaseException:
            _abandon(manager, [transfer.future for transfer in transfers])
            raise
        self._finish(manager, done, timeout, transfers, "upload")
        return [self.uri(item.bucket, item.key) for item in items]

    def _finish(
        self,
        manager: TransferManager,
        done: _Completion,
        timeout: float | None,
        transfers: Sequence[_Transfer],
        action: str,
    ) -> None:
        """Wait for every transfer; raise for the first failure, or on the deadline.

        The error's ``uploaded`` names the uploads that did finish, in order.
        """
        if not done.wait(timeout):
            pending = [transfer for transfer in transfers if not transfer.future.done()]
            stored = self._stored(transfers, action)
            _abandon(manager, [transfer.future for transfer in transfers])
            first = (pending or list(transfers))[0]
            raise DeadlineError(
                f"the {action} of {self.uri(first.bucket, first.key)} did not finish "
                f"within {timeout or 0:.3g} s ({len(pending)} of {len(transfers)} unfinished)",
                uploaded=stored,
            )
        manager.shutdown()
        failures = [
            (exc, transfer)
            for transfer in transfers
            if (exc := _exception(transfer.future)) is not None
        ]
        if not failures:
            return
        for exc, transfer in failures[1:]:
            logger.warning("%s", self._describe(exc, action, transfer))
        exc, transfer = failures[0]
        more = f" (and {len(failures) - 1} more failed)" if len(failures) > 1 else ""
        message = self._describe(exc, action, transfer) + more
        raise StagingError(
            message,
            bucket=transfer.bucket,
            key=transfer.key,
            uploaded=self._stored(transfers, action),
        ) from exc

    def _stored(self, transfers: Sequence[_Transfer], action: str) -> list[str]:
        """The URIs of the uploads among ``transfers`` that finished without an error."""
        if action != "upload":
            return []
        return [
            self.uri(transfer.bucket, transfer.key)
            for transfer in transfers
            if transfer.future.done() and _exception(transfer.future) is None
        ]

    def _describe(self, exc: BaseException, action: str, transfer: _Transfer) -> str:
        """One line naming the object and the cause; never a URL with its query, or a key."""
        from botocore.exceptions import BotoCoreError, ClientError
        from s3transfer.exceptions import RetriesExceededError

        uri = self.uri(transfer.bucket, transfer.key)
        local = transfer.local
        where = f"{local} to {uri}" if action == "upload" else f"{uri} to {local}"
        if isinstance(exc, RetriesExceededError) and exc.last_exception is not None:
            # s3transfer's own retries of a download whose body stopped part-way.
            exc = exc.last_exception
        if isinstance(exc, ClientError):
            return _client_error_message(exc, action, uri, where, transfer.bucket)
        if isinstance(exc, BotoCoreError):
            return f"cannot {action} {where}: {self._problem(exc)}"
        if isinstance(exc, OSError):
            return f"cannot {action} {where}: {_one_line(exc.strerror or str(exc))}"
        return f"cannot {action} {where}: {type(exc).__name__}: {_one_line(str(exc))}"

    def _problem(self, exc: BotoCoreError) -> str:
        """What went wrong talking to the endpoint (botocore's text holds the request URL)."""
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectionError,
            ConnectTimeoutError,
            EndpointConnectionError,
            HTTPClientError,
            ReadTimeoutError,
        )

        # The stubs' Config lacks the attributes botocore sets from its arguments.
        config: Any = self.client.meta.config
        endpoint = _endpoint(self.client.meta.endpoint_url)
        if isinstance(exc, ConnectTimeoutError):
            problem = f"no connection to {endpoint} within {config.connect_timeout} s"
        elif isinstance(exc, ReadTimeoutError):
            problem = f"no answer from {endpoint} within {config.read_timeout} s"
        elif isinstance(exc, EndpointConnectionError):
            problem = f"cannot connect to {endpoint}"
        elif isinstance(exc, ConnectionClosedError):
            problem = f"the connection to {endpoint} was closed or reset before an answer"
        elif isinstance(exc, ConnectionError | HTTPClientError):
            problem = f"the connection to {endpoint} failed ({type(exc).__name__})"
        else:
            return _one_line(str(exc))
        return f"{problem}; gave up after retrying"


def _client_error_message(exc: ClientError, action: str, uri: str, where: str, bucket: str) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code == "NoSuchBucket":
        return f"cannot {action} {where}: the bucket {bucket} does not exist"
    if code in ("404", "NoSuchKey", "NotFound"):
        return f"cannot {action} {uri}: the object does not exist"
    if code in ("403", "AccessDenied", "Forbidden"):
        return f"cannot {action} {where}: access denied"
    retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    attempts = f" ({retries + 1} attempts)" if retries else ""
    detail = _one_line(f"{code} {error.get('Message', '')}")
    return f"cannot {action} {where}: {detail}{attempts}"


def _endpoint(url: str) -> str:
    """``scheme://host:port`` of an endpoint URL, without user information or path."""
    parts = urlsplit(url)
    host = parts.hostname or "the endpoint"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return f"{scheme}{host}{port}"


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _subscriber(subscriber: _Completion | _Known) -> BaseSubscriber:
    # s3transfer calls any object's on_queued and on_done; subclassing BaseSubscriber would
    # import it eagerly.
    return cast("BaseSubscriber", subscriber)


def _exception(future: TransferFuture) -> BaseException | None:
    try:
        future.result()
    except Exception as exc:
        return exc
    return None


def _abandon(manager: TransferManager, futures: Sequence[TransferFuture] = ()) -> None:
    """Cancel the transfers and let them wind down in the background: a blocked read must not
    hold the caller past its deadline."""
    # Cancel each future: TransferManager.shutdown(cancel=True) passes its arguments in the
    # wrong order and raises TypeError (boto/s3transfer#143).
    for future in futures:
        future.cancel()
    threading.Thread(target=manager.shutdown, name="s3transfer-cancel", daemon=True).start()


class LocalStorage:
    """A folder with one subfolder per bucket; object ``key`` is the file ``root/bucket/key``.

    With ``notifications`` (a folder), every object written is announced there as a bucket
    would announce it: one file per object holding the S3 ``ObjectCreated`` event (see
    ``notify``), which a local workflow turns into invocations.
    """

    def __init__(self, root: Path, notifications: Path | None = None) -> None:
        self.root = root
        self.notifications = notifications

    def uri(self, bucket: str, key: str) -> str:
        return str(self.root / bucket / key)

    def path(self, bucket: str, key: str) -> Path:
        """The file holding the object; ``UnsafeKeyError`` if outside ``root/bucket``."""
        problem = _part_problem("bucket name", bucket, allow_slash=False) or _part_problem(
            "key", key, allow_slash=True
        )
        if problem is None:
            folder = (self.root / bucket).resolve()
            path = self.root / bucket / key
            if not path.resolve().is_relative_to(folder):
                problem = f"{path} is outside {folder}"
        if problem is not None:
            raise UnsafeKeyError(
                f"unsafe local object {bucket}/{key!r}: {problem}", bucket=bucket, key=key
            )
        return self.root / bucket / key

    def download(
        self,
        bucket: str,
        key: str,
        dest: Path,
        *,
        timeout: float | None = None,
        size: int | None = None,
        etag: str | None = None,
    ) -> None:
        """Copy the object to ``dest``; a local copy is not bounded by ``timeout``."""
        source = self.path(bucket, key)
        if not source.is_file():
            raise StagingError(
                f"cannot download {source}: the object {bucket}/{key} does not exist",
                bucket=bucket,
                key=key,
            )
        _copy(source, dest, bucket, key)

    def upload_many(
        self, items: Sequence[UploadItem], *, timeout: float | None = None
    ) -> list[str]:
        end = None if timeout is None else time.monotonic() + timeout
        uris: list[str] = []
        for item in items:
            if end is not None and time.monotonic() >= end:
                raise DeadlineError(
                    f"no time left to upload {item.source} to {item.bucket}", uploaded=uris
                )
            try:
                self.put(item.source, item.bucket, item.key)
            except StagingError as exc:
                exc.uploaded = tuple(uris)
                raise
            uris.append(self.uri(item.bucket, item.key))
        return uris

    def put(self, source: Path, bucket: str, key: str) -> Path:
        """Store the file ``source`` as ``bucket/key`` (atomically) and announce it."""
        dest = self.path(bucket, key)
        _copy(source, dest, bucket, key)
        if self.notifications is not None:
            notify(self.notifications, bucket, key, dest.stat().st_size)
        return dest


class UnsupportedStorage:
    """A provider of a type this supervisor cannot reach; every transfer fails, saying so."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind

    def uri(self, bucket: str, key: str) -> str:
        return f"{self.name}:{bucket}/{key}"

    def download(
        self,
        bucket: str,
        key: str,
        dest: Path,
        *,
        timeout: float | None = None,
        size: int | None = None,
        etag: str | None = None,
    ) -> None:
        raise StagingError(
            f"cannot download {bucket}/{key} from storage provider {self.name}: "
            f"{self.kind} is not supported here",
            bucket=bucket,
            key=key,
        )

    def upload_many(
        self, items: Sequence[UploadItem], *, timeout: float | None = None
    ) -> list[str]:
        first = items[0] if items else UploadItem(Path(), "", "")
        names = ", ".join(f"{item.bucket}/{item.key}" for item in items[:3])
        more = f" and {len(items) - 3} more" if len(items) > 3 else ""
        raise StagingError(
            f"cannot upload {len(items)} file(s) ({names}{more}) to storage provider "
            f"{self.name}: {self.kind} is not supported here",
            bucket=first.bucket,
            key=first.key,
        )


_notification_lock = threading.Lock()
_last_notification = 0


def notify(folder: Path, bucket: str, key: str, size: int) -> Path:
    """Write the ``ObjectCreated`` event of ``bucket/key`` into ``folder``, atomically.

    File names sort in the order the objects were written (nanoseconds since the epoch,
    then a random part); a reader skips the temporary ``.tmp-*`` files.
    """
    global _last_notification
    with _notification_lock:
        # Strictly increasing in this process, even on a coarse clock or one set back.
        now = _last_notification = max(time.time_ns(), _last_notification + 1)
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(object_created(bucket, key, size, when=now / 1e9)).encode()
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        path = folder / f"{now:020d}-{uuid.uuid4().hex}.json"
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def _part_problem(what: str, value: str, *, allow_slash: bool) -> str | None:
    parts = value.split("/")
    if not value or "\x00" in value:
        return f"the {what} is empty or contains NUL"
    if not allow_slash and len(parts) > 1:
        return f"the {what} contains '/'"
    if any(part in ("", ".", "..") for part in parts):
        return f"the {what} has an empty, '.' or '..' part (or starts or ends with '/')"
    return None


def _copy(source: Path, dest: Path, bucket: str, key: str) -> None:
    try:
        _copy_atomic(source, dest)
    except OSError as exc:
        raise StagingError(
            f"cannot copy {source} to {dest}: {exc.strerror or exc}", bucket=bucket, key=key
        ) from exc


def _copy_atomic(source: Path, dest: Path) -> None:
    """Copy through a temporary file in the destination folder so no half-written file is seen."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, MIB)
        os.chmod(temporary, 0o644)
        os.replace(temporary, dest)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise

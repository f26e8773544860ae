"""The ``s3`` and ``minio`` storage types: any S3-compatible endpoint, through s3transfer.

``S3Storage`` streams to disk, splits big objects into parts and runs the transfers of one
call in parallel through one ``TransferManager`` with a bounded number of requests.  The
settings of ``storage_providers.s3.ID`` (``S3Provider``: AWS S3, or an S3-compatible
``endpoint``) and of ``storage_providers.minio.ID`` (``MinioProvider``: path-style
addressing, OSCAR's defaults) become a client made by the shared ``Clients``.

Provider errors become ``StagingError`` (with ``raise ... from``) naming the object on one
line, never a credential or a request URL; a transfer that outlives its ``timeout`` raises
``DeadlineError``.  When ``upload_many`` fails, the error's ``uploaded`` names the items it
did store; a failed item leaves no object (s3transfer aborts a failed multipart upload).
s3transfer and botocore are imported by ``S3Storage`` itself, never at module import.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from pydantic import Field, model_validator

from supervisor.errors import DeadlineError, StagingError
from supervisor.models import Model, OptionalSecret, OptionalText, blank_is_none
from supervisor.storage.base import MIB, Clients, StorageType, UploadItem
from supervisor.storage.base import endpoint as _endpoint
from supervisor.storage.base import one_line as _one_line

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError
    from mypy_boto3_s3 import S3Client
    from pydantic import SecretStr
    from s3transfer.futures import TransferFuture
    from s3transfer.manager import TransferManager
    from s3transfer.subscribers import BaseSubscriber

__all__ = [
    "DEFAULT_MINIO_ENDPOINT",
    "MAX_KEY_BYTES",
    "MINIO",
    "S3",
    "MinioProvider",
    "S3Provider",
    "S3Storage",
]

logger = logging.getLogger(__name__)

# Bytes read from a download's body per write, and writes queued for the disk at most: a
# download holds about IO_QUEUE + max_concurrency chunks between the network and the disk.
# A chunk costs a read, a queue hand-off and a write in Python whatever its size: with 64 KiB
# chunks, 10 ranged GETs at 50 MiB/s each kept 2 cores busy and took 1.7x as long.
IO_CHUNK = 1024 * 1024
IO_QUEUE = 8
# The longest object key S3 and MinIO store, in bytes of UTF-8.
MAX_KEY_BYTES = 1024
# The MinIO that an OSCAR cluster runs (faas-supervisor's default when ``endpoint`` is absent).
DEFAULT_MINIO_ENDPOINT = "http://minio-service.minio:9000"


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
            # disk (or the GIL) can fill.
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

    def delete(self, bucket: str, key: str) -> None:
        """Delete the object (S3 answers as well when there is none)."""
        from botocore.exceptions import BotoCoreError, ClientError

        uri = self.uri(bucket, key)
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            message = _client_error_message(exc, "delete", uri, uri, bucket)
            raise StagingError(message, bucket=bucket, key=key) from exc
        except BotoCoreError as exc:
            message = f"cannot delete {uri}: {self._problem(exc)}"
            raise StagingError(message, bucket=bucket, key=key) from exc

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


class S3Provider(Model):
    """AWS S3 (or an S3-compatible ``endpoint``); unset keys come from boto3's own chain."""

    access_key: OptionalSecret = Field(
        default=None, description="Access key ID; unset: the function's own credentials."
    )
    secret_key: OptionalSecret = Field(default=None, description="Secret access key.")
    session_token: OptionalSecret = Field(
        default=None, description="Session token, for temporary credentials."
    )
    region: OptionalText = Field(default=None, description="AWS region of the buckets.")
    endpoint: OptionalText = Field(
        default=None, description="URL of an S3-compatible server instead of AWS S3."
    )


class MinioProvider(Model):
    """A MinIO server, reached with path-style addressing.

    OSCAR writes all five keys for the MinIO of its cluster (``minio.default``), with
    ``access_key`` and ``secret_key`` ``hidden`` where it mounts the real ones as a secret;
    faas-supervisor read an absent or empty ``endpoint`` as the cluster's MinIO, an empty
    ``region`` as none (us-east-1 for the S3 client) and an empty ``verify`` as true.
    """

    endpoint: str = Field(
        default=DEFAULT_MINIO_ENDPOINT,
        description="URL of the MinIO server; absent or empty: an OSCAR cluster's own MinIO.",
    )
    verify: bool = Field(default=True, description="Verify the server's TLS certificate.")
    region: str = Field(default="us-east-1", description="Region name the server expects.")
    access_key: OptionalSecret = Field(default=None, description="Access key.")
    secret_key: OptionalSecret = Field(default=None, description="Secret key.")

    @model_validator(mode="before")
    @classmethod
    def _defaults_for_blanks(cls, data: object) -> object:
        if not isinstance(data, Mapping):
            return data
        blank = ("endpoint", "verify", "region")
        return {
            key: value
            for key, value in data.items()
            if key not in blank or blank_is_none(value) is not None
        }


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _s3_storage(ident: str, settings: S3Provider, clients: Clients) -> S3Storage:
    client = clients.s3(
        region_name=settings.region,
        endpoint_url=settings.endpoint,
        aws_access_key_id=_reveal(settings.access_key),
        aws_secret_access_key=_reveal(settings.secret_key),
        aws_session_token=_reveal(settings.session_token),
    )
    return S3Storage(client, max_concurrency=clients.max_concurrency)


def _minio_storage(ident: str, settings: MinioProvider, clients: Clients) -> S3Storage:
    client = clients.s3(
        path_style=True,
        region_name=settings.region,
        endpoint_url=settings.endpoint,
        verify=settings.verify,
        aws_access_key_id=_reveal(settings.access_key),
        aws_secret_access_key=_reveal(settings.secret_key),
    )
    return S3Storage(client, max_concurrency=clients.max_concurrency)


S3 = StorageType(
    "s3",
    S3Provider,
    "AWS S3 or S3-compatible servers, by ID.",
    _s3_storage,
    in_events=True,
    implicit_default=True,
    max_key_bytes=MAX_KEY_BYTES,
)
MINIO = StorageType(
    "minio",
    MinioProvider,
    "MinIO servers, by ID.",
    _minio_storage,
    in_events=True,
    max_key_bytes=MAX_KEY_BYTES,
)

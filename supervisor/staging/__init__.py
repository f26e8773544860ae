"""Staging: inputs downloaded into the input folder, planned outputs uploaded.

This package owns the storage providers of a function (``ProviderSet``, built once by
``build_providers`` from the definition's ``storage_providers`` with the storage types of
``supervisor.storage``, which do the transfers), the choice of provider for a record and
the local file name of a staged input (``paths``).  Clients are created on first use, or up
front by ``ProviderSet.prepare`` so that no client is built while the deadline runs; their retries
and timeouts are those of ``retries``.  An upload of several files that fails part-way
names, in its error and in the log, the files stored before the failure.

An input must fit on the filesystem of the input folder (``/tmp`` in Lambda): one whose
size the event gives is checked against the free space before any request is made, and a
download that runs out of space (``ENOSPC``) leaves no partial file behind.  Both raise
``NoSpaceError``, for the runtime to hand the record to Batch or fail it.
"""

from __future__ import annotations

import errno
import glob
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import storage
from supervisor.botocore_tweaks import send_small_bodies_at_once
from supervisor.config import FunctionConfig, StorageLocation
from supervisor.deadline import Deadline
from supervisor.errors import ConfigError, DeadlineError, NoSpaceError, StagingError
from supervisor.events import Record
from supervisor.filtering import PlannedUpload
from supervisor.sessions import Sessions
from supervisor.staging import retries
from supervisor.staging.paths import DEFAULT_BODY_NAME, input_path, safe_name
from supervisor.storage.base import MIB, Clients, StorageProvider, UploadItem
from supervisor.storage.local import Announce, LocalStorage
from supervisor.storage.s3 import S3Storage

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_s3 import S3Client

__all__ = [
    "SPACE_MARGIN",
    "FreeSpace",
    "LocalStorage",
    "ProviderSet",
    "S3Storage",
    "StorageProvider",
    "UploadItem",
    "build_providers",
    "delete_bytes",
    "disk_free",
    "download",
    "get_bytes",
    "input_path",
    "matching_input",
    "outside_inputs",
    "put_bytes",
    "safe_name",
    "upload",
]

logger = logging.getLogger(__name__)

ProviderKey = tuple[str, str]
ProviderFactory = Callable[[], StorageProvider]
SessionFactory = Callable[[], "Session"]
FreeSpace = Callable[[Path], int]

# Room kept beside an input for the script, its log and small outputs.
SPACE_MARGIN = MIB
# URIs named in the message of an upload that failed part-way; the log has them all.
_LISTED = 10
# ENOSPC, or a user's quota (EDQUOT) on filesystems that have one.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NO_DEADLINE = Deadline.none()


class ProviderSet:
    """The storage providers of one function, each built on first use and then kept.

    ``factories`` maps ``(type, id)`` to a builder; ``fallback``, when given, builds the one
    provider that serves every other ``(type, id)`` (a local run's storage folder).
    """

    def __init__(
        self,
        factories: Mapping[ProviderKey, ProviderFactory],
        *,
        fallback: ProviderFactory | None = None,
    ) -> None:
        self._factories = dict(factories)
        self._fallback = fallback
        self._built: dict[ProviderKey | None, StorageProvider] = {}
        self._lock = threading.Lock()

    def get(self, provider_type: str, provider_id: str = "default") -> StorageProvider:
        """The provider for ``storage_provider: TYPE.ID``; ``ConfigError`` when none is defined."""
        key: ProviderKey | None = (provider_type, provider_id)
        factory = self._factories.get((provider_type, provider_id))
        if factory is None:
            factory, key = self._fallback, None
        if factory is None:
            raise ConfigError(_undefined(provider_type, provider_id))
        with self._lock:
            provider = self._built.get(key)
            if provider is None:
                provider = self._built[key] = factory()
            return provider

    def prepare(self, locations: Iterable[StorageLocation] | None = None) -> None:
        """Build the providers (and clients) of ``locations`` now; every defined one if None."""
        if locations is None:
            keys: Iterable[ProviderKey] = self._factories or [("s3", "default")]
        else:
            keys = dict.fromkeys((item.provider_type, item.provider_id) for item in locations)
        for provider_type, provider_id in keys:
            self.get(provider_type, provider_id)


def build_providers(
    config: FunctionConfig,
    *,
    storage_root: Path | None = None,
    announce: Announce | None = None,
    session_factory: SessionFactory | None = None,
    max_concurrency: int = 10,
) -> ProviderSet:
    """The providers a function may use, each built by its storage type (``supervisor.storage``);
    with ``storage_root`` every one is that local folder (which calls ``announce`` for each
    object it writes, when given).

    Their S3 clients come from ``session_factory`` (a boto3 session), by default one session
    shared by all of them, which loads the S3 service model once.
    """
    if storage_root is not None:
        return ProviderSet({}, fallback=partial(LocalStorage, storage_root, announce=announce))
    sessions = session_factory or Sessions().boto3
    clients = Clients(partial(_client, sessions, max_concurrency), max_concurrency)
    factories: dict[ProviderKey, ProviderFactory] = {}
    for kind in storage.registered():
        defined = dict(config.storage_providers.of(kind.name))
        if kind.implicit_default:
            defined = {"default": kind.settings(), **defined}
        for ident, settings in defined.items():
            factories[kind.name, ident] = partial(kind.build, ident, settings, clients)
    _warn_unsupported(config)
    return ProviderSet(factories)


def _unsupported(provider_type: str) -> str | None:
    """The name of a type that no transfer here reaches (Onedata), else None."""
    return storage.get(provider_type).unsupported


def _warn_unsupported(config: FunctionConfig) -> None:
    """Say at start which inputs and outputs will fail: their provider cannot be reached."""
    for what, locations in (("input", config.input), ("output", config.output)):
        for location in locations:
            label = _unsupported(location.provider_type)
            if label is not None:
                logger.warning(
                    "The %s %s on storage provider %s will fail: %s is not supported here",
                    what,
                    location.path,
                    location.storage_provider,
                    label,
                )


def disk_free(folder: Path) -> int:
    """The bytes an unprivileged writer may still write on the filesystem of ``folder``."""
    return shutil.disk_usage(folder).free


def download(
    record: Record,
    providers: ProviderSet,
    input_dir: Path,
    *,
    inputs: Sequence[StorageLocation] = (),
    deadline: Deadline = _NO_DEADLINE,
    free_space: FreeSpace = disk_free,
    margin: int = SPACE_MARGIN,
) -> Path:
    """Stage the record's object (or body) into ``input_dir``; return the file's path.

    The transfer gets what is left before ``deadline``; ``DeadlineError`` when nothing is.

    ``NoSpaceError`` when the object's size (from the event) plus ``margin`` is more than
    ``free_space(input_dir)``, before any request; or when the download ran out of space,
    after removing what it had written.
    """
    if record.body is not None:
        return _save_body(record, input_dir)
    if not record.is_object:
        raise StagingError(f"a {record.source} record carries neither an object nor a body")
    dest = input_path(input_dir, record.key, bucket=record.bucket)
    provider = providers.get(*_input_provider(record, inputs))
    uri = provider.uri(record.bucket, record.key)
    timeout = deadline.timeout(f"download {uri}")
    input_dir.mkdir(parents=True, exist_ok=True)
    _check_room(record, uri, input_dir, free_space, margin)
    logger.info("Downloading %s to %s", uri, dest)
    try:
        provider.download(
            record.bucket, record.key, dest, timeout=timeout, size=record.size, etag=record.etag
        )
    except (StagingError, OSError) as exc:
        if not _out_of_space(exc):
            raise
        _discard(dest)
        free = _probe(free_space, input_dir)
        size = "" if record.size is None else f" of {_amount(record.size)}"
        room = "" if free is None else f" (only {_amount(free)} free there without it)"
        raise NoSpaceError(
            f"cannot download {uri}{size} to {input_dir}: no space left on the device{room}",
            bucket=record.bucket,
            key=record.key,
            size=record.size,
            free=free,
        ) from exc
    return dest


def upload(
    plans: Sequence[PlannedUpload],
    providers: ProviderSet,
    *,
    deadline: Deadline = _NO_DEADLINE,
) -> list[str]:
    """Upload the planned files, in parallel per provider, each group within what is left
    before ``deadline``; return their URIs in plan order."""
    groups: dict[ProviderKey, list[int]] = {}
    for index, plan in enumerate(plans):
        location = plan.location
        groups.setdefault((location.provider_type, location.provider_id), []).append(index)
    uris = [""] * len(plans)
    stored: list[str] = []
    # A provider that cannot be reached (Onedata) goes last, so that the files for the others
    # are stored before its group fails the upload.
    ordered = sorted(groups.items(), key=lambda group: _unsupported(group[0][0]) is not None)
    for (provider_type, provider_id), indexes in ordered:
        provider = providers.get(provider_type, provider_id)
        items = [_upload_item(plans[index]) for index in indexes]
        try:
            timeout = deadline.timeout(f"upload {len(indexes)} file(s)")
            group = provider.upload_many(items, timeout=timeout)
        except (StagingError, DeadlineError) as exc:
            done = [*stored, *exc.uploaded]
            if not done and len(plans) == 1:
                raise
            raise _partial_upload(exc, done, len(plans)) from exc
        for index, uri in zip(indexes, group, strict=True):
            uris[index] = uri
            stored.append(uri)
            logger.info("Uploaded %s to %s", plans[index].relative, uri)
    return uris


def put_bytes(providers: ProviderSet, bucket: str, key: str, data: bytes, scratch: Path) -> str:
    """Store a small object (an event kept for a Batch job) in the default S3 provider.

    Returns its ``s3://bucket/key`` address, which ``get_bytes`` reads back.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch, prefix="object-") as handle:
        handle.write(data)
        handle.flush()
        providers.get("s3").upload_many([UploadItem(Path(handle.name), bucket, key)])
    return f"s3://{bucket}/{key}"


def get_bytes(providers: ProviderSet, uri: str, scratch: Path) -> bytes:
    """Read back an object stored by ``put_bytes``, given as ``s3://bucket/key``."""
    bucket, key = _address(uri)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="object-") as folder:
        dest = Path(folder) / "object"
        providers.get("s3").download(bucket, key, dest)
        return dest.read_bytes()


def delete_bytes(providers: ProviderSet, uri: str) -> None:
    """Delete an object stored by ``put_bytes``; ``StagingError`` when it cannot."""
    bucket, key = _address(uri)
    provider = providers.get("s3")
    if isinstance(provider, LocalStorage):
        try:
            provider.path(bucket, key).unlink(missing_ok=True)
        except OSError as exc:
            raise StagingError(f"cannot delete {uri}: {exc}", bucket=bucket, key=key) from exc
        return
    if not isinstance(provider, S3Storage):
        raise StagingError(f"cannot delete {uri}: the s3 provider is not S3 storage")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        provider.client.delete_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as exc:
        raise StagingError(f"cannot delete {uri}: {exc}", bucket=bucket, key=key) from exc


def _address(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise StagingError(f"expected an address like s3://bucket/key, got {uri!r}")
    return bucket, key


def _upload_item(plan: PlannedUpload) -> UploadItem:
    return UploadItem(plan.source, plan.location.bucket, plan.key)


def _partial_upload(
    exc: StagingError | DeadlineError, done: Sequence[str], planned: int
) -> StagingError | DeadlineError:
    """``exc`` again, its message saying which of the ``planned`` files were stored before it.

    A file that failed left no object: S3 stores a PUT whole or not at all, and s3transfer
    aborts the multipart upload of a file that failed part-way.
    """
    if done:
        logger.error(
            "Uploaded before the failure (%d of %d files): %s", len(done), planned, ", ".join(done)
        )
        shown = ", ".join(_printable(uri) for uri in done[:_LISTED])
        more = f" and {len(done) - _LISTED} more (see the log)" if len(done) > _LISTED else ""
        note = f"uploaded before the failure: {shown}{more}"
    else:
        note = f"nothing was uploaded ({planned} files planned)"
    message = f"{exc}; {note}"
    if isinstance(exc, DeadlineError):
        return DeadlineError(message, uploaded=done)
    return StagingError(message, bucket=exc.bucket, key=exc.key, uploaded=done)


def _printable(text: str) -> str:
    """``text`` with control characters escaped, so that an error stays one line."""
    from supervisor.escaping import escape

    return escape(text)


def matching_input(record: Record, inputs: Sequence[StorageLocation]) -> StorageLocation | None:
    """The input that holds the object of ``record``, or None when none does.

    An input holds an object of its provider's type in its bucket, under its folder
    (``bucket/folder`` holds ``folder/x`` and ``folder/sub/x``, not ``folder2/x``); a key
    with ``.`` or ``..`` parts is under no folder, since a provider may read it as a path.
    The provider an OSCAR delegated event names is the origin cluster's: its record is
    judged against the inputs of that provider when the definition has any, else against
    the inputs of its type, as the origin's copy of the same service would judge it.
    """
    if not record.is_object:
        return None
    if any(part in (".", "..") for part in record.key.split("/")):
        return None
    candidates = [item for item in inputs if item.provider_type == record.provider_type]
    if record.provider_id is not None:
        named = [item for item in candidates if item.provider_id == record.provider_id]
        candidates = named or candidates
    for location in candidates:
        folder = location.folder
        if location.bucket == record.bucket and (not folder or record.key.startswith(f"{folder}/")):
            return location
    return None


def outside_inputs(record: Record, inputs: Sequence[StorageLocation]) -> str | None:
    """Why the object of ``record`` is outside ``inputs``, or None when an input holds it
    (or the record holds no object, or there are no inputs)."""
    if not record.is_object or not inputs or matching_input(record, inputs) is not None:
        return None
    provider = record.provider_type
    if record.provider_id is not None:
        provider += f".{record.provider_id}"
    where = f"the object {_printable(record.bucket)}/{_printable(record.key)} ({provider})"
    listed = ", ".join(f"{item.storage_provider} {item.path}" for item in inputs)
    if any(part in (".", "..") for part in record.key.split("/")):
        return (
            f"{where} has '.' or '..' parts in its key: it is under none of the inputs ({listed})"
        )
    return f"{where} is outside the function's inputs ({listed})"


def _input_provider(record: Record, inputs: Sequence[StorageLocation]) -> ProviderKey:
    """The provider the event names (OSCAR's delegated events), else the input holding the
    record's object, else one with its type and bucket, else the first of its type, else
    the default one."""
    if record.provider_id is not None:
        return record.provider_type, record.provider_id
    same_type = [item for item in inputs if item.provider_type == record.provider_type]
    same_bucket = [item for item in same_type if item.bucket == record.bucket]
    holder = matching_input(record, inputs)
    chosen = holder or next(iter(same_bucket or same_type), None)
    if chosen is None:
        return record.provider_type, "default"
    return chosen.provider_type, chosen.provider_id


def _save_body(record: Record, input_dir: Path) -> Path:
    dest = input_dir / safe_name(record.file_name or DEFAULT_BODY_NAME)
    body = record.body or b""
    logger.info("Saving the %s request body (%d bytes) to %s", record.source, len(body), dest)
    try:
        input_dir.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(body)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            _discard(dest)
            raise NoSpaceError(
                f"cannot write the request body ({_amount(len(body))}) to {dest}: "
                "no space left on the device",
                size=len(body),
            ) from exc
        raise StagingError(f"cannot write the request body to {dest}: {exc.strerror}") from exc
    return dest


def _check_room(
    record: Record, uri: str, input_dir: Path, free_space: FreeSpace, margin: int
) -> None:
    if record.size is None:
        return
    free = _probe(free_space, input_dir)
    if free is None or record.size + margin <= free:
        return
    raise NoSpaceError(
        f"{uri} is {_amount(record.size)}: it does not fit in the {_amount(free)} free "
        f"under {input_dir} (with {_amount(margin)} kept free), so it was not downloaded",
        bucket=record.bucket,
        key=record.key,
        size=record.size,
        free=free,
    )


def _probe(free_space: FreeSpace, folder: Path) -> int | None:
    try:
        return free_space(folder)
    except OSError as exc:
        logger.warning("cannot tell the free space under %s: %s", folder, exc)
        return None


def _out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` or an error it was raised from is ENOSPC (or EDQUOT)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in _NO_SPACE:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _discard(dest: Path) -> None:
    """Remove a partial input: the file, and s3transfer's ``NAME.xxxxxxxx`` temporary."""
    for path in (dest, *dest.parent.glob(glob.escape(dest.name) + ".*")):
        with suppress(OSError):
            path.unlink()


def _amount(size: int) -> str:
    if size >= 1024 * MIB:
        return f"{size} bytes ({size / (1024 * MIB):.1f} GiB)"
    return f"{size} bytes ({size / MIB:.1f} MiB)"


def _undefined(provider_type: str, provider_id: str) -> str:
    value = provider_type if provider_id == "default" else f"{provider_type}.{provider_id}"
    return (
        f"storage_provider {value!r} is not defined: "
        f"add it under storage_providers.{provider_type}.{provider_id}"
    )


def _client(
    sessions: SessionFactory,
    max_concurrency: int,
    *,
    path_style: bool = False,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    verify: bool | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
) -> S3Client:
    """An S3 client; unset values come from boto3's own chain (env, profile, role).

    Retries and timeouts are those of ``retries``, and each retry is logged.  A small body
    is sent with its request, without waiting for a ``100 Continue`` first.
    """
    from botocore.config import Config

    config = Config(
        **retries.settings(),
        max_pool_connections=max_concurrency,
        s3={"addressing_style": "path"} if path_style else None,
    )
    client = sessions().client(
        "s3",
        region_name=region_name,
        endpoint_url=endpoint_url,
        verify=verify,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        config=config,
    )
    retries.log_retries(client)
    send_small_bodies_at_once(client)
    return client

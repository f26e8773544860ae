"""The storage types a definition may name but no transfer here can reach: Onedata, Rucio.

OSCAR writes their settings (``storage_providers.onedata.ID``, ``storage_providers.rucio.ID``);
a definition holding them is valid, and an input or output routed to one fails: every
transfer of ``UnsupportedStorage`` raises ``StagingError`` saying the type is not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from supervisor.errors import StagingError
from supervisor.models import Model, OptionalSecret, OptionalText
from supervisor.storage.base import Clients, StorageType, UploadItem

__all__ = ["ONEDATA", "RUCIO", "OnedataProvider", "RucioProvider", "UnsupportedStorage"]


class OnedataProvider(Model):
    """A Onedata space (accepted in a definition; not reachable from here)."""

    oneprovider_host: OptionalText = Field(default=None, description="Oneprovider host.")
    token: OptionalSecret = Field(default=None, description="Onedata access token.")
    space: OptionalText = Field(default=None, description="Onedata space name.")


class RucioProvider(Model):
    """A Rucio storage element (accepted in a definition; not reachable from here)."""

    host: OptionalText = Field(default=None, description="Rucio server.")
    auth_host: OptionalText = Field(default=None, description="Rucio authentication server.")
    account: OptionalText = Field(default=None, description="Rucio account.")
    rse: OptionalText = Field(default=None, description="Rucio storage element.")
    refresh_token: OptionalSecret = Field(default=None, description="OIDC refresh token.")
    oidc_audience: OptionalText = Field(default=None, description="OIDC audience.")
    token_endpoint: OptionalText = Field(default=None, description="OIDC token endpoint.")


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


def _onedata(ident: str, settings: OnedataProvider, clients: Clients) -> UnsupportedStorage:
    return UnsupportedStorage(f"onedata.{ident}", "Onedata")


def _rucio(ident: str, settings: RucioProvider, clients: Clients) -> UnsupportedStorage:
    return UnsupportedStorage(f"rucio.{ident}", "Rucio")


ONEDATA = StorageType(
    "onedata",
    OnedataProvider,
    "Onedata spaces, by ID: accepted, but an input or output there fails.",
    _onedata,
    unsupported="Onedata",
    in_events=True,
)
RUCIO = StorageType(
    "rucio",
    RucioProvider,
    "Rucio storage elements, by ID: accepted, but an input or output there fails.",
    _rucio,
    unsupported="Rucio",
)

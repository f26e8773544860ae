"""Where a definition's inputs and outputs are, and the storage providers it names.

``StorageLocation`` and ``OutputLocation`` are the ``input`` and ``output`` entries;
``StorageProviders`` is the ``storage_providers`` section, one field per storage type that
``supervisor.storage`` registers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from supervisor import storage
from supervisor.models import Model as _Model

__all__ = [
    "PROVIDER_TYPES",
    "UNSUPPORTED_PROVIDER_TYPES",
    "OutputLocation",
    "StorageLocation",
    "StorageProviders",
]

# The storage types, as ``supervisor.storage`` registers them; no type is added afterwards.
_STORAGE_TYPES = storage.freeze()
PROVIDER_TYPES = tuple(kind.name for kind in _STORAGE_TYPES)
# Types an OSCAR definition may hold that no transfer here can use: a definition naming
# them is valid, and an invocation that routes an input or output to one fails.
UNSUPPORTED_PROVIDER_TYPES = tuple(kind.name for kind in _STORAGE_TYPES if kind.unsupported)


def _as_tuple(value: object) -> object:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return value


# The JSON Schema (docs/schema/function.json) says what these accept before conversion.
Strings = Annotated[
    tuple[str, ...],
    BeforeValidator(_as_tuple),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class StorageLocation(_Model):
    """An input or output: ``storage_provider`` is ``TYPE`` or ``TYPE.ID``; ``path`` is
    ``bucket/folder``."""

    storage_provider: str = Field(
        default="s3",
        description="`TYPE` or `TYPE.ID` of a provider under `storage_providers` "
        "(`s3`, `minio.lab`...); a bare type is its `default` ID.",
    )
    path: str = Field(description="`bucket` or `bucket/folder`, without `s3://` or a leading `/`.")

    @field_validator("storage_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        # OSCAR and faas-supervisor read the type whatever its case; an ID may hold dots.
        kind, dot, ident = value.strip().partition(".")
        kind = kind.lower()
        if kind not in PROVIDER_TYPES or (dot and not ident):
            raise ValueError(f"expected one of {', '.join(PROVIDER_TYPES)}, optionally as TYPE.ID")
        return f"{kind}{dot}{ident}"

    @field_validator("path")
    @classmethod
    def _has_bucket(cls, value: str) -> str:
        scheme, separator, rest = value.strip().partition("://")
        if separator and scheme.isalnum():
            raise ValueError(f"write {rest.strip('/')!r} without '{scheme}://'")
        # A leading "/" is read as if it were not there (strict mode refuses it: see
        # ``supervisor.checks``).
        cleaned = value.strip().strip("/")
        if not cleaned:
            raise ValueError("expected 'bucket' or 'bucket/folder'")
        parts = cleaned.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError("expected 'bucket/folder' without empty, '.' or '..' parts")
        return cleaned

    @property
    def provider_type(self) -> str:
        return self.storage_provider.partition(".")[0]

    @property
    def provider_id(self) -> str:
        return self.storage_provider.partition(".")[2] or "default"

    @property
    def bucket(self) -> str:
        return self.path.partition("/")[0]

    @property
    def folder(self) -> str:
        """The key prefix inside the bucket, no slash at either end ('' for the bucket root)."""
        return self.path.partition("/")[2]


class OutputLocation(StorageLocation):
    """An output; a file goes here when any prefix and any suffix match (empty lists match all)."""

    prefix: Strings = Field(
        default=(),
        description="File name prefixes (relative to the output folder); any one matches. "
        "Empty: every file.",
    )
    suffix: Strings = Field(
        default=(),
        description="File name suffixes such as `.txt`; any one matches. Empty: every file.",
    )


class _StorageSections(_Model):
    """``storage_providers``: one section per storage type (the fields of ``StorageProviders``,
    derived from the registry), each mapping a provider ID to its settings."""

    def of(self, kind: str) -> dict[str, Any]:
        """The providers of type ``kind``, by ID."""
        providers: dict[str, Any] = getattr(self, kind)
        return providers

    def secrets(self) -> tuple[str, ...]:
        """Every credential value held here, for the log redaction filter."""
        found: list[str] = []
        for kind in type(self).model_fields:
            for provider in self.of(kind).values():
                for field in type(provider).model_fields:
                    secret = getattr(provider, field)
                    value = secret.get_secret_value() if isinstance(secret, SecretStr) else ""
                    if value and value not in _PLACEHOLDERS:
                        found.append(value)
        return tuple(dict.fromkeys(found))

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: object) -> object:
        """``null`` for a type, or for an ID, is an empty mapping (YAML's ``webdav:`` alone)."""
        if not isinstance(data, Mapping):
            return data
        return {
            key: _empty_if_null(value) if key in cls.model_fields else value
            for key, value in data.items()
        }


def _empty_if_null(value: object) -> object:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {key: {} if item is None else item for key, item in value.items()}
    return value


# What OSCAR writes for the keys of its own MinIO, whose real keys it mounts as a secret:
# no credential, and redacting the word from every log line would only garble them.
_PLACEHOLDERS = ("hidden",)

if TYPE_CHECKING:
    StorageProviders = _StorageSections
else:
    StorageProviders = create_model(
        "StorageProviders",
        __base__=_StorageSections,
        __module__=__name__,
        **{
            kind.name: (
                dict[str, kind.settings],
                Field(default_factory=dict, description=kind.description),
            )
            for kind in _STORAGE_TYPES
        },
    )

"""Where a big event is kept for a Batch job: the place ``batch.event_store`` names (any
storage type, as ``TYPE[.ID]://bucket/folder``), its URI, and the object read back and
deleted through the same provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supervisor.config import FunctionConfig
from supervisor.errors import ConfigError, StagingError
from supervisor.event_store import EventStore
from supervisor.staging import ObjectUri, build_providers, delete_bytes, get_bytes


def _config(tmp_path: Path, **batch: Any) -> FunctionConfig:
    return FunctionConfig.model_validate(
        {
            "name": "f",
            "output": [
                {"storage_provider": "local.disk", "path": "first/out"},
                {"storage_provider": "s3", "path": "results/out"},
            ],
            "storage_providers": {"local": {"disk": {"root": str(tmp_path / "disk")}}},
            "batch": batch,
        }
    )


@pytest.mark.parametrize(
    ("event_store", "where"),
    [
        pytest.param(None, ("s3", "default", "results", ".supervisor-events"), id="default"),
        pytest.param("kept/big/", ("s3", "default", "kept", "big"), id="bucket-folder"),
        pytest.param("kept", ("s3", "default", "kept", ""), id="bucket"),
        pytest.param("s3://kept/big", ("s3", "default", "kept", "big"), id="s3"),
        pytest.param("minio.lab://kept/a/b", ("minio", "lab", "kept", "a/b"), id="minio-id"),
        pytest.param("local.disk://kept", ("local", "disk", "kept", ""), id="local"),
    ],
)
def test_the_place_of_the_events(
    tmp_path: Path, event_store: str | None, where: tuple[str, str, str, str]
) -> None:
    config = _config(tmp_path, event_store=event_store)
    store = EventStore(config, build_providers(config), tmp_path / "scratch")

    assert store.location() == ObjectUri(*where)


@pytest.mark.parametrize(
    ("event_store", "problem"),
    [
        ("nfs://kept/big", "'nfs' is not a storage type (one of s3, minio, local"),
        ("minio.://kept", "the provider ID after minio. is empty"),
        ("s3:///big", "names no bucket"),
    ],
)
def test_a_place_that_names_no_store_is_a_config_error(
    tmp_path: Path, event_store: str, problem: str
) -> None:
    config = _config(tmp_path, event_store=event_store)
    store = EventStore(config, build_providers(config), tmp_path / "scratch")

    with pytest.raises(ConfigError, match=r"batch\.event_store") as caught:
        store.put("{}")
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "parts"),
    [
        (
            "s3://events/.supervisor-events/one.json",
            ("s3", "default", "events", ".supervisor-events/one.json"),
        ),
        ("minio.lab://events/one.json", ("minio", "lab", "events", "one.json")),
        ("webdav.dcache://top/a b/c.json", ("webdav", "dcache", "top", "a b/c.json")),
    ],
)
def test_an_object_uri_names_its_provider_and_reads_back_as_written(
    uri: str, parts: tuple[str, str, str, str]
) -> None:
    address = ObjectUri.parse(uri)

    assert address == ObjectUri(*parts)
    assert str(address) == uri


@pytest.mark.parametrize(
    "uri", ["events/one.json", "s3://events", "s3://events/", "s3:///one.json", "ftp://e/one.json"]
)
def test_an_address_that_is_no_object_uri_is_a_staging_error(uri: str) -> None:
    with pytest.raises(StagingError, match="is not an object's address"):
        ObjectUri.parse(uri)


def test_an_event_kept_on_a_local_provider_is_read_back_and_deleted(tmp_path: Path) -> None:
    config = _config(tmp_path, event_store="local.disk://kept/big")
    providers = build_providers(config)
    store = EventStore(config, providers, tmp_path / "scratch")
    event = json.dumps({"payload": "caf\u00e9 " * 1000})

    uri = store.put(event)

    assert uri.startswith("local.disk://kept/big/")
    assert uri.endswith(".json")
    (kept,) = (tmp_path / "disk" / "kept" / "big").iterdir()
    assert kept.read_text() == event
    assert get_bytes(providers, uri, tmp_path / "scratch").decode() == event
    delete_bytes(providers, uri)
    assert not kept.exists()


def test_a_local_run_keeps_s3_uris_in_its_storage_folder(tmp_path: Path) -> None:
    config = _config(tmp_path)
    providers = build_providers(config, storage_root=tmp_path / "storage")
    store = EventStore(config, providers, tmp_path / "scratch")

    uri = store.put('{"big": true}')

    assert uri.startswith("s3://results/.supervisor-events/")
    kept = tmp_path / "storage" / "results" / uri.removeprefix("s3://results/")
    assert kept.read_text() == '{"big": true}'
    delete_bytes(providers, uri)
    assert not kept.exists()


def test_a_provider_that_cannot_delete_says_so(tmp_path: Path) -> None:
    config = FunctionConfig.model_validate(
        {"name": "f", "storage_providers": {"onedata": {"space": {"space": "s"}}}}
    )

    with pytest.raises(StagingError, match=r"onedata\.space cannot delete objects"):
        delete_bytes(build_providers(config), "onedata.space://top/one.json")

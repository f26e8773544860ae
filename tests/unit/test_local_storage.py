"""The local storage provider: a folder per bucket, nothing outside the root, atomic writes."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.config import FunctionConfig, OutputLocation, StorageLocation
from supervisor.deadline import Deadline
from supervisor.errors import ConfigError, DeadlineError, StagingError, UnsafeKeyError
from supervisor.events import Record
from supervisor.filtering import plan_uploads
from supervisor.staging import (
    LocalStorage,
    Stores,
    UploadItem,
    build_providers,
    download,
    upload,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "storage"
    (folder / "bucket" / "in").mkdir(parents=True)
    (folder / "bucket" / "in" / "data.bin").write_bytes(b"\x00\x01payload")
    return folder


def test_download_copies_the_object(root: Path, tmp_path: Path) -> None:
    dest = tmp_path / "work" / "data.bin"

    LocalStorage(root).download("bucket", "in/data.bin", dest)

    assert dest.read_bytes() == b"\x00\x01payload"
    assert [path.name for path in dest.parent.iterdir()] == ["data.bin"]


def test_a_missing_object_names_the_object(root: Path, tmp_path: Path) -> None:
    with pytest.raises(StagingError, match=r"bucket/in/nope\.bin does not exist") as caught:
        LocalStorage(root).download("bucket", "in/nope.bin", tmp_path / "x")

    assert str(root / "bucket" / "in" / "nope.bin") in str(caught.value)
    assert (caught.value.bucket, caught.value.key) == ("bucket", "in/nope.bin")
    assert not (tmp_path / "x").exists()


def test_upload_many_creates_folders_and_returns_paths(root: Path, tmp_path: Path) -> None:
    source = tmp_path / "result.txt"
    source.write_text("result")
    storage = LocalStorage(root)

    uris = storage.upload_many(
        [UploadItem(source, "out", "a/b/result.txt"), UploadItem(source, "out", "top.txt")]
    )

    assert uris == [str(root / "out" / "a" / "b" / "result.txt"), str(root / "out" / "top.txt")]
    assert (root / "out" / "a" / "b" / "result.txt").read_text() == "result"
    assert (root / "out" / "top.txt").read_text() == "result"


def test_upload_replaces_and_leaves_no_temporary_file(root: Path, tmp_path: Path) -> None:
    source = tmp_path / "new.txt"
    source.write_text("new")
    target = root / "bucket" / "in" / "data.bin"

    LocalStorage(root).upload_many([UploadItem(source, "bucket", "in/data.bin")])

    assert target.read_text() == "new"
    assert sorted(path.name for path in target.parent.iterdir()) == ["data.bin"]


def test_a_failed_copy_leaves_nothing_behind(root: Path, tmp_path: Path) -> None:
    with pytest.raises(StagingError, match="cannot copy"):
        LocalStorage(root).upload_many([UploadItem(tmp_path / "missing", "bucket", "in/new")])

    assert sorted(path.name for path in (root / "bucket" / "in").iterdir()) == ["data.bin"]


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        ("bucket", "../../escape"),
        ("bucket", "in/../../escape"),
        ("bucket", "/etc/passwd"),
        ("bucket", "in//x"),
        ("bucket", "in/"),
        ("bucket", ""),
        ("bucket", "a\x00b"),
        ("..", "escape"),
        ("", "x"),
        ("a/b", "x"),
        (".", "x"),
    ],
)
def test_keys_escaping_the_root_are_refused(
    root: Path, tmp_path: Path, bucket: str, key: str
) -> None:
    source = tmp_path / "f"
    source.write_text("x")
    storage = LocalStorage(root)

    with pytest.raises(UnsafeKeyError):
        storage.upload_many([UploadItem(source, bucket, key)])
    with pytest.raises(UnsafeKeyError):
        storage.download(bucket, key, tmp_path / "dest")

    assert not (tmp_path / "escape").exists()


def test_a_link_inside_the_root_cannot_lead_outside(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    (root / "bucket" / "link").symlink_to(outside)
    source = tmp_path / "f"
    source.write_text("x")
    storage = LocalStorage(root)

    with pytest.raises(UnsafeKeyError, match="outside"):
        storage.download("bucket", "link/secret", tmp_path / "dest")
    with pytest.raises(UnsafeKeyError, match="outside"):
        storage.upload_many([UploadItem(source, "bucket", "link/new")])

    assert sorted(path.name for path in outside.iterdir()) == ["secret"]


def test_upload_past_the_timeout_raises_deadline_error(root: Path, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_text("x")

    with pytest.raises(DeadlineError):
        LocalStorage(root).upload_many([UploadItem(source, "bucket", "k")], timeout=0)


def test_an_upload_that_runs_out_of_time_part_way_names_what_it_stored(
    root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "f"
    source.write_text("x")
    # Each look at the clock is 4 seconds later: the second file starts 8 s into a 5 s budget.
    ticks = iter(range(0, 400, 4))
    storage = LocalStorage(root, clock=lambda: float(next(ticks)))
    items = [UploadItem(source, "bucket", "one"), UploadItem(source, "bucket", "two")]

    with pytest.raises(DeadlineError, match="no time left to upload") as caught:
        storage.upload_many(items, timeout=5)

    assert caught.value.uploaded == (str(root / "bucket" / "one"),)
    assert not (root / "bucket" / "two").exists()


def test_a_local_run_maps_every_provider_to_one_folder(root: Path) -> None:
    config = FunctionConfig(name="f")

    providers = build_providers(config, storage_root=root)

    storage = providers.get("s3")
    assert isinstance(storage, LocalStorage)
    assert storage.root == root
    assert providers.get("minio", "anything") is storage
    assert providers.get("local", "x") is storage


def test_defined_local_providers_use_their_root(tmp_path: Path) -> None:
    config = FunctionConfig.model_validate(
        {"name": "f", "storage_providers": {"local": {"disk": {"root": str(tmp_path)}}}}
    )

    providers = build_providers(config)

    storage = providers.get("local", "disk")
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path
    assert providers.get("local", "disk") is storage


@pytest.mark.parametrize(
    ("provider_type", "provider_id", "shown"),
    [("minio", "default", "'minio'"), ("s3", "other", "'s3.other'"), ("local", "x", "'local.x'")],
)
def test_an_undefined_provider_is_a_config_error(
    provider_type: str, provider_id: str, shown: str
) -> None:
    providers = build_providers(FunctionConfig(name="f"))

    with pytest.raises(ConfigError, match=f"storage_provider {shown} is not defined"):
        providers.get(provider_type, provider_id)


def test_providers_are_built_once_and_on_demand() -> None:
    built: list[str] = []

    def factory() -> LocalStorage:
        built.append("x")
        return LocalStorage(Path("/nonexistent"))

    providers = Stores({("local", "a"): factory})
    assert built == []

    providers.prepare()
    providers.prepare([StorageLocation(storage_provider="local.a", path="b")])
    providers.get("local", "a")

    assert built == ["x"]


def test_download_and_upload_through_the_provider_set(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    providers = build_providers(FunctionConfig(name="f"), storage_root=root)
    record = Record(source="s3", bucket="bucket", key="in/data.bin")
    work = tmp_path / "work"

    with caplog.at_level(logging.INFO, logger="supervisor.staging"):
        path = download(record, providers, work / "input", deadline=Deadline(100.0, lambda: 0.0))
        (work / "output" / "sub").mkdir(parents=True)
        (work / "output" / "sub" / "r.txt").write_text("r")
        plans = plan_uploads(work / "output", [OutputLocation(path="results/run")])
        uris = upload(plans, providers)

    assert path == work / "input" / "data.bin"
    assert path.read_bytes() == b"\x00\x01payload"
    assert uris == [str(root / "results" / "run" / "sub" / "r.txt")]
    assert (root / "results" / "run" / "sub" / "r.txt").read_text() == "r"
    messages = [record.getMessage() for record in caplog.records]
    assert f"Downloading {root / 'bucket' / 'in' / 'data.bin'} to {path}" in messages
    assert f"Uploaded sub/r.txt to {uris[0]}" in messages


def test_a_body_record_is_written_under_a_safe_name(tmp_path: Path) -> None:
    providers = Stores({})
    named = Record(source="api", body=b"{}", file_name="../../x.json")
    unnamed = Record(source="direct", body=b"raw")

    assert download(named, providers, tmp_path).read_bytes() == b"{}"
    assert (tmp_path / "x.json").is_file()
    assert download(unnamed, providers, tmp_path) == tmp_path / "event_file"


def test_a_download_after_the_deadline_raises(root: Path, tmp_path: Path) -> None:
    providers = build_providers(FunctionConfig(name="f"), storage_root=root)
    record = Record(source="s3", bucket="bucket", key="in/data.bin")

    with pytest.raises(DeadlineError, match=r"bucket/in/data\.bin"):
        download(record, providers, tmp_path, deadline=Deadline(10.0, lambda: 10.0))

    assert not (tmp_path / "data.bin").exists()


@pytest.mark.parametrize(
    ("record", "chosen"),
    [
        (Record(source="s3", bucket="b2", key="k"), "two"),
        (Record(source="s3", bucket="other", key="k"), "one"),
        (Record(source="minio", bucket="b2", key="k"), "three"),
        (Record(source="minio", bucket="b9", key="k"), "three"),
    ],
)
def test_the_input_location_picks_the_provider(tmp_path: Path, record: Record, chosen: str) -> None:
    roots = {name: tmp_path / name for name in ("one", "two", "three")}
    for folder in roots.values():
        (folder / record.bucket).mkdir(parents=True)
        (folder / record.bucket / "k").write_text(folder.name)
    providers = Stores(
        {
            ("s3", "one"): lambda: LocalStorage(roots["one"]),
            ("s3", "two"): lambda: LocalStorage(roots["two"]),
            ("minio", "three"): lambda: LocalStorage(roots["three"]),
        }
    )
    inputs = [
        StorageLocation(storage_provider="s3.one", path="b1/in"),
        StorageLocation(storage_provider="s3.two", path="b2"),
        StorageLocation(storage_provider="minio.three", path="b3"),
    ]

    path = download(record, providers, tmp_path / "in", inputs=inputs)

    assert path.read_text() == chosen


def test_importing_staging_does_not_import_boto() -> None:
    code = (
        "import sys, supervisor.staging, supervisor.filtering; "
        "print(sorted(m for m in ('boto3', 'botocore', 's3transfer') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )

    assert result.stdout.strip() == "[]"

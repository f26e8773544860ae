"""Staging against a real moto server over HTTP: what lands in the bucket and on disk."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from supervisor.config import FunctionConfig, OutputLocation, StorageLocation
from supervisor.deadline import Deadline
from supervisor.errors import DeadlineError, StagingError
from supervisor.events import Record
from supervisor.filtering import plan_uploads
from supervisor.staging import S3Storage, UploadItem, build_providers, download, upload
from supervisor.staging.retries import MAX_ATTEMPTS

MIB = 1024 * 1024
MakeBucket = Callable[[str], str]


class RecordingSession:
    """A boto3 session that remembers the arguments of each client it creates."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._session = boto3.session.Session()

    def client(self, service: str, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self._session.client(service, **kwargs)  # type: ignore[call-overload]


def body(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def test_download_streams_the_object_to_a_file(
    s3: Any, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = make_bucket("in")
    data = os.urandom(3 * MIB + 17)
    s3.put_object(Bucket=bucket, Key="folder/input.bin", Body=data)
    providers = build_providers(FunctionConfig(name="f"))

    path = download(Record(source="s3", bucket=bucket, key="folder/input.bin"), providers, tmp_path)

    assert path == tmp_path / "input.bin"
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.bin"]


def test_a_big_upload_goes_in_parts(s3: Any, make_bucket: MakeBucket, tmp_path: Path) -> None:
    bucket = make_bucket("out")
    source = tmp_path / "big.bin"
    data = os.urandom(12 * MIB)
    source.write_bytes(data)
    storage = S3Storage(s3, multipart_threshold=5 * MIB + 1, multipart_chunksize=5 * MIB)

    uris = storage.upload_many([UploadItem(source, bucket, "results/big.bin")])

    assert uris == [f"s3://{bucket}/results/big.bin"]
    assert body(s3, bucket, "results/big.bin") == data
    etag = s3.head_object(Bucket=bucket, Key="results/big.bin")["ETag"].strip('"')
    assert etag.endswith("-3")


def test_many_outputs_upload_in_parallel(s3: Any, make_bucket: MakeBucket, tmp_path: Path) -> None:
    bucket = make_bucket("many")
    files = {f"part-{index:02d}/file-{index}.dat": os.urandom(1000 + index) for index in range(50)}
    for relative, data in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)
    plans = plan_uploads(tmp_path, [OutputLocation(path=f"{bucket}/run/1")])
    providers = build_providers(FunctionConfig(name="f"))

    uris = upload(plans, providers)

    assert uris == [f"s3://{bucket}/run/1/{relative}" for relative in sorted(files)]
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == [f"run/1/{name}" for name in sorted(files)]
    for relative, data in files.items():
        assert body(s3, bucket, f"run/1/{relative}") == data


def test_a_missing_object_names_bucket_and_key(
    make_bucket: MakeBucket, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    bucket = make_bucket("in")
    providers = build_providers(FunctionConfig(name="f"))
    record = Record(source="s3", bucket=bucket, key="no/such key.txt")

    with pytest.raises(StagingError, match="does not exist") as caught:
        download(record, providers, tmp_path)

    assert f"s3://{bucket}/no/such key.txt" in str(caught.value)
    assert (caught.value.bucket, caught.value.key) == (bucket, "no/such key.txt")
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_small_upload_does_not_wait_for_100_continue(
    s3: Any, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """botocore asks the server's go-ahead before sending any file (a round trip): the
    providers' clients keep that for bodies over 1 MiB."""
    bucket = make_bucket("expect")
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(os.urandom(1000))
    large.write_bytes(os.urandom(2 * MIB))
    storage = build_providers(FunctionConfig(name="f")).get("s3")
    expect: dict[str, Any] = {}

    def note(request: Any, **kwargs: Any) -> None:
        expect[request.url.rpartition("/")[2]] = request.headers.get("Expect")

    assert isinstance(storage, S3Storage)
    storage.client.meta.events.register("before-send.s3.PutObject", note)
    storage.upload_many(
        [UploadItem(small, bucket, "small.bin"), UploadItem(large, bucket, "large.bin")]
    )

    assert expect["small.bin"] is None
    assert expect["large.bin"] in ("100-continue", b"100-continue")
    assert body(s3, bucket, "small.bin") == small.read_bytes()
    assert body(s3, bucket, "large.bin") == large.read_bytes()


def test_an_upload_to_a_missing_bucket_names_it(s3: Any, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("a")
    items = [UploadItem(source, "no-such-bucket-here", "x/a.txt")]

    with pytest.raises(StagingError, match="no-such-bucket-here") as caught:
        S3Storage(s3).upload_many(items)

    assert caught.value.key == "x/a.txt"


@pytest.mark.parametrize(
    "key",
    ["in/with space.txt", "in/a+b=c&d.txt", "in/ñandú/日本語 ファイル.txt", "in/100%.txt"],
)
def test_unusual_keys_round_trip(
    s3: Any, make_bucket: MakeBucket, tmp_path: Path, key: str
) -> None:
    bucket = make_bucket("keys")
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    providers = build_providers(FunctionConfig(name="f"))

    path = download(Record(source="s3", bucket=bucket, key=key), providers, tmp_path / "in")
    plans = plan_uploads(tmp_path / "in", [OutputLocation(path=f"{bucket}/out")])
    uris = upload(plans, providers)

    assert path.name == key.rpartition("/")[2]
    assert path.read_bytes() == key.encode()
    assert uris == [f"s3://{bucket}/out/{path.name}"]
    assert body(s3, bucket, f"out/{path.name}") == key.encode()


def test_a_download_past_its_deadline_raises(
    s3: Any, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = make_bucket("slow")
    s3.put_object(Bucket=bucket, Key="big.bin", Body=os.urandom(4 * MIB))
    storage = S3Storage(s3)

    with pytest.raises(DeadlineError, match="did not finish") as caught:
        storage.download(bucket, "big.bin", tmp_path / "big.bin", timeout=1e-6)

    assert f"s3://{bucket}/big.bin" in str(caught.value)
    assert "1 of 1 unfinished" in str(caught.value)


def test_minio_and_named_s3_providers_use_their_endpoint_and_keys(
    s3: Any, make_bucket: MakeBucket, tmp_path: Path, moto_server: str
) -> None:
    bucket = make_bucket("minio")
    s3.put_object(Bucket=bucket, Key="in/photo.jpg", Body=b"jpeg bytes")
    config = FunctionConfig.model_validate(
        {
            "name": "f",
            "input": [{"storage_provider": "minio.store", "path": f"{bucket}/in"}],
            "output": [{"storage_provider": "s3.named", "path": f"{bucket}/out"}],
            "storage_providers": {
                "minio": {
                    "store": {
                        "endpoint": moto_server,
                        "verify": False,
                        "access_key": "minio-access",
                        "secret_key": "minio-secret",
                    }
                },
                "s3": {
                    "named": {
                        "endpoint": moto_server,
                        "region": "eu-west-1",
                        "access_key": "named-access",
                        "secret_key": "named-secret",
                    }
                },
            },
        }
    )
    sessions = RecordingSession()
    providers = build_providers(config, session_factory=lambda: sessions)
    providers.prepare([*config.input, *config.output])
    created = len(sessions.calls)
    record = Record(source="minio", bucket=bucket, key="in/photo.jpg")

    path = download(record, providers, tmp_path / "in", inputs=config.input)
    plans = plan_uploads(tmp_path / "in", config.output)
    uris = upload(plans, providers)

    assert path.read_bytes() == b"jpeg bytes"
    assert uris == [f"s3://{bucket}/out/photo.jpg"]
    assert body(s3, bucket, "out/photo.jpg") == b"jpeg bytes"
    assert created == len(sessions.calls) == 2
    minio_call, named_call = sessions.calls
    assert minio_call["endpoint_url"] == named_call["endpoint_url"] == moto_server
    assert (minio_call["aws_access_key_id"], minio_call["aws_secret_access_key"]) == (
        "minio-access",
        "minio-secret",
    )
    assert minio_call["config"].s3 == {"addressing_style": "path"}
    for call in (minio_call, named_call):
        assert call["config"].retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
        assert (call["config"].connect_timeout, call["config"].read_timeout) == (3.0, 10.0)
    assert named_call["aws_access_key_id"] == "named-access"
    assert named_call["region_name"] == "eu-west-1"


def test_uploads_to_two_providers_return_uris_in_plan_order(
    s3: Any, make_bucket: MakeBucket, tmp_path: Path, moto_server: str
) -> None:
    first, second = make_bucket("first"), make_bucket("second")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.csv").write_text("b")
    config = FunctionConfig.model_validate(
        {
            "name": "f",
            "output": [
                {"storage_provider": "minio.m", "path": f"{first}/m", "suffix": [".csv"]},
                {"storage_provider": "s3", "path": second},
            ],
            "storage_providers": {"minio": {"m": {"endpoint": moto_server}}},
        }
    )
    plans = plan_uploads(tmp_path, config.output)

    uris = upload(plans, build_providers(config))

    assert uris == [f"s3://{second}/a.txt", f"s3://{first}/m/b.csv", f"s3://{second}/b.csv"]
    assert body(s3, first, "m/b.csv") == b"b"
    assert body(s3, second, "a.txt") == b"a"


@pytest.mark.parametrize("failure", ["missing-bucket", "deadline"])
def test_an_upload_failing_part_way_names_what_was_stored(
    s3: Any, make_bucket: MakeBucket, tmp_path: Path, moto_server: str, failure: str
) -> None:
    """The first provider's files are stored; the second's fail (or the time is up)."""
    bucket, missing = make_bucket("stored"), "no-such-bucket-part-way"
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    config = FunctionConfig.model_validate(
        {
            "name": "f",
            "output": [
                {"storage_provider": "s3", "path": f"{bucket}/run"},
                {"storage_provider": "minio.m", "path": f"{missing}/run"},
            ],
            "storage_providers": {"minio": {"m": {"endpoint": moto_server}}},
        }
    )
    plans = plan_uploads(tmp_path, config.output)
    ticks = iter([0.0, 100.0] if failure == "deadline" else [0.0, 1.0])
    expected: type[Exception] = DeadlineError if failure == "deadline" else StagingError
    stored = [f"s3://{bucket}/run/a.txt", f"s3://{bucket}/run/b.txt"]

    with pytest.raises(expected) as caught:
        upload(plans, build_providers(config), deadline=Deadline(10.0, lambda: next(ticks)))

    message = str(caught.value)
    assert message.endswith(f"; uploaded before the failure: {', '.join(stored)}")
    assert getattr(caught.value, "uploaded", None) == tuple(stored)
    if failure == "deadline":
        assert message.startswith("no time left to upload 2 file(s)")
    else:
        assert f"the bucket {missing} does not exist" in message
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == ["run/a.txt", "run/b.txt"]


def test_inputs_pick_the_provider_for_the_bucket(
    s3: Any, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = make_bucket("pick")
    s3.put_object(Bucket=bucket, Key="k.txt", Body=b"k")
    inputs = [StorageLocation(storage_provider="s3", path=f"{bucket}/in")]

    path = download(
        Record(source="s3", bucket=bucket, key="k.txt"),
        build_providers(FunctionConfig(name="f")),
        tmp_path,
        inputs=inputs,
    )

    assert path.read_bytes() == b"k"

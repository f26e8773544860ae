"""The benchmark's proxy (``bench/latency_proxy.py``) in front of the moto server: what boto3
sends through it arrives whole, what it reads back is the object's bytes, and the bandwidth
cap holds each connection to its pace."""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
PROXY = ROOT / "bench" / "latency_proxy.py"
MIB = 1024 * 1024


def _load_proxy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("latency_proxy", PROXY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


latency_proxy = _load_proxy()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_holds_a_flow_to_its_rate_without_saving_idle_time() -> None:
    clock = FakeClock()
    pacer = latency_proxy.Pacer(50 * MIB, clock=clock, sleep=clock.sleep)
    pacer.spend(25 * MIB)
    pacer.spend(25 * MIB)
    assert clock.now == pytest.approx(101.0)
    clock.now += 10.0  # idle: no credit for it
    pacer.spend(5 * MIB)
    assert clock.slept[-1] == pytest.approx(0.1)


def test_the_pacer_without_a_rate_never_sleeps() -> None:
    clock = FakeClock()
    latency_proxy.Pacer(0, clock=clock, sleep=clock.sleep).spend(100 * MIB)
    assert clock.slept == []


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=90-", (90, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=95-200", (95, 99)),
    ],
)
def test_byte_range_reads_the_spans_s3_serves(
    header: str | None, span: tuple[int, int] | None
) -> None:
    assert latency_proxy.byte_range(header, 100) == span


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "bytes=100-", "bytes=9-3", "bytes=-", "lines=1-2"]
)
def test_byte_range_leaves_the_rest_to_the_upstream(header: str) -> None:
    with pytest.raises(latency_proxy.Unservable):
        latency_proxy.byte_range(header, 100)


def test_the_cache_fills_an_object_once_for_parallel_readers() -> None:
    cache = latency_proxy.ObjectCache()
    fills: list[int] = []
    release = threading.Event()

    def fill() -> Any:
        fills.append(1)
        release.wait(30)
        return ([("ETag", '"a"')], b"body")

    got: list[Any] = []
    readers = [
        threading.Thread(target=lambda: got.append(cache.get("/b/k", '"a"', fill)))
        for _ in range(5)
    ]
    for reader in readers:
        reader.start()
    release.set()
    for reader in readers:
        reader.join(30)
    assert len(fills) == 1
    assert [copy[1] for copy in got] == [b"body"] * 5


def test_the_cache_refills_on_a_new_etag_and_keeps_to_its_limit() -> None:
    cache = latency_proxy.ObjectCache(limit=10)
    cache.get("/b/one", "1", lambda: ([], b"123456"))
    assert cache.get("/b/one", "2", lambda: ([], b"654321"))[1] == b"654321"
    cache.get("/b/two", "1", lambda: ([], b"abcdef"))  # 12 bytes: the older copy goes
    assert cache.get("/b/one", "2", lambda: ([], b"refill"))[1] == b"refill"
    assert cache.get("/b/big", "1", lambda: ([], b"x" * 11))[1] == b"x" * 11  # not kept
    assert cache.get("/b/big", "1", lambda: None) is None


@pytest.fixture
def proxy(moto_server: str) -> Iterator[Callable[..., str]]:
    """Start a proxy in front of the moto server with the given options; yields its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*options: str) -> str:
        process = subprocess.Popen(
            [sys.executable, str(PROXY), "--upstream", moto_server, "--delay", "0", *options],
            stdout=subprocess.PIPE,
        )
        processes.append(process)
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()
        assert url.startswith("http://"), url
        return url

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, config=Config(max_pool_connections=10))


SMALL_PARTS = TransferConfig(
    multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4
)


@pytest.mark.parametrize("options", [(), ("--bandwidth", "500"), ("--cache-objects",)])
def test_boto3_transfers_through_the_proxy_keep_every_byte(
    options: tuple[str, ...],
    proxy: Callable[..., str],
    s3: Any,
    make_bucket: Callable[[str], str],
    tmp_path: Path,
) -> None:
    bucket = make_bucket("proxy")
    data = os.urandom(17 * MIB + 123)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    client = _client(proxy(*options))

    client.upload_file(str(source), bucket, "multipart.bin", Config=SMALL_PARTS)
    with source.open("rb") as body:
        client.put_object(Bucket=bucket, Key="single.bin", Body=body)
    for key in ("multipart.bin", "single.bin"):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key

    copy = tmp_path / "copy.bin"
    client.download_file(bucket, "multipart.bin", str(copy), Config=SMALL_PARTS)
    assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(data).digest()
    whole = client.get_object(Bucket=bucket, Key="single.bin", ChecksumMode="ENABLED")
    assert whole["Body"].read() == data
    for asked, expected in (("bytes=5-1000004", data[5:1000005]), ("bytes=-7", data[-7:])):
        part = client.get_object(Bucket=bucket, Key="single.bin", Range=asked)
        assert part["Body"].read() == expected, asked
        assert part["ContentRange"].endswith(f"/{len(data)}")


def test_the_copy_of_an_object_follows_a_new_version(
    proxy: Callable[..., str], s3: Any, make_bucket: Callable[[str], str]
) -> None:
    bucket = make_bucket("proxy")
    client = _client(proxy("--cache-objects"))
    s3.put_object(Bucket=bucket, Key="k", Body=b"first version")
    assert client.get_object(Bucket=bucket, Key="k", Range="bytes=0-4")["Body"].read() == b"first"
    s3.put_object(Bucket=bucket, Key="k", Body=b"second version")
    assert client.get_object(Bucket=bucket, Key="k", Range="bytes=0-5")["Body"].read() == b"second"
    etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    with pytest.raises(client.exceptions.ClientError, match=r"PreconditionFailed|412"):
        client.get_object(Bucket=bucket, Key="k", IfMatch='"0123"')
    assert client.get_object(Bucket=bucket, Key="k", IfMatch=etag)["Body"].read() == (
        b"second version"
    )
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket=bucket, Key="missing", Range="bytes=0-4")


def test_a_chunked_body_arrives_whole_and_the_connection_is_kept(
    proxy: Callable[..., str], s3: Any, make_bucket: Callable[[str], str]
) -> None:
    bucket = make_bucket("proxy")
    parts = urlsplit(proxy("--bandwidth", "500"))
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    pieces = [os.urandom(300_000), b"", os.urandom(5), os.urandom(2 * MIB)]
    connection.request("PUT", f"/{bucket}/chunked.bin", body=iter(pieces), encode_chunked=True)
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    sock = connection.sock
    for _ in range(3):  # the same connection serves the next requests (moto's own page)
        connection.request("GET", "/moto-api/")
        answer = connection.getresponse()
        assert answer.status == 200
        assert len(answer.read()) == int(answer.getheader("Content-Length") or -1) > 0
        assert connection.sock is sock
    connection.close()
    assert s3.get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == b"".join(pieces)


def test_the_bandwidth_cap_slows_each_connection_down(
    proxy: Callable[..., str], s3: Any, make_bucket: Callable[[str], str]
) -> None:
    bucket = make_bucket("proxy")
    s3.put_object(Bucket=bucket, Key="k", Body=os.urandom(3 * MIB))
    client = _client(proxy("--bandwidth", "4", "--cache-objects"))
    client.get_object(Bucket=bucket, Key="k", Range="bytes=0-0")["Body"].read()
    start = time.monotonic()
    body = client.get_object(Bucket=bucket, Key="k")["Body"].read()
    elapsed = time.monotonic() - start
    assert len(body) == 3 * MIB
    assert elapsed >= 0.7  # 3 MiB at 4 MiB/s: 0.75 s at least, however fast the machine

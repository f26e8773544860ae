"""Bucket notifications of the local storage: every object written is announced as S3 would."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from supervisor import events
from supervisor.config import load_host_facts
from supervisor.errors import StagingError
from supervisor.events import object_created
from supervisor.local import notifications
from supervisor.local.batch import definition_environment
from supervisor.local.notifications import announcer, notify
from supervisor.storage.base import UploadItem
from supervisor.storage.local import LocalStorage

KEYS = [
    "movie.mp4",
    "start/movie.mp4",
    "start/2024/01/02/movie.mp4",
    "start/my holiday movie.mp4",
    "start/a+b=c.mp4",
    "start/ a  b +.mp4",
    "start/100%.txt",
    "start/vídeo ñandú 日本.mp4",
    "start/emoji 🎬.mp4",
    "start/query?x=1&y=2#frag.txt",
    "start/tilde~star*'quote'.txt",
]


def _record(event: Any) -> events.Record:
    parsed = events.parse(event)
    assert parsed.kind == "records"
    (record,) = parsed.records
    return record


# --- object_created --------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("as_text", [False, True])
def test_object_created_round_trip(key: str, as_text: bool) -> None:
    event = object_created("scar-av-workflow", key, 1234)
    record = _record(json.dumps(event) if as_text else event)
    assert record.source == "s3"
    assert (record.bucket, record.key, record.size) == ("scar-av-workflow", key, 1234)


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("start/my movie.mp4", "start/my+movie.mp4"),
        ("start/a+b.mp4", "start/a%2Bb.mp4"),
        ("start/100%.txt", "start/100%25.txt"),
        ("start/é.mp4", "start/%C3%A9.mp4"),
        ("a/b/c.txt", "a/b/c.txt"),
    ],
)
def test_object_created_encodes_the_key_as_s3_does(key: str, encoded: str) -> None:
    (item,) = object_created("b", key, 1)["Records"]
    assert item["s3"]["object"]["key"] == encoded


def test_object_created_is_an_s3_put_notification() -> None:
    (item,) = object_created("b", "k", 0, when=1_700_000_000.25)["Records"]
    assert item["eventSource"] == "aws:s3"
    assert item["eventName"] == "ObjectCreated:Put"
    assert item["eventTime"] == "2023-11-14T22:13:20.250Z"
    assert item["s3"]["bucket"] == {"name": "b", "arn": "arn:aws:s3:::b"}
    assert item["s3"]["object"]["size"] == 0
    assert _record({"Records": [item]}).event_time == "2023-11-14T22:13:20.250Z"


def test_object_created_sequencers_grow_with_time() -> None:
    first = object_created("b", "k", 1, when=100.0)["Records"][0]["s3"]["object"]["sequencer"]
    later = object_created("b", "k", 1, when=100.5)["Records"][0]["s3"]["object"]["sequencer"]
    assert len(first) == len(later)
    assert first < later


# --- LocalStorage.put and notify -------------------------------------------------------


def _notifications(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if not path.name.startswith("."))


def _read(path: Path) -> events.Record:
    return _record(json.loads(path.read_text()))


def _no_temporary_files(*folders: Path) -> None:
    for folder in folders:
        leftovers = [path for path in folder.rglob("*") if path.name.startswith(".tmp-")]
        assert leftovers == []


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source" / "movie.mp4"
    path.parent.mkdir()
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 100)
    return path


@pytest.mark.parametrize("key", ["start/movie.mp4", "start/my movie+1.mp4", "a/b/c/ñ.mp4"])
def test_put_writes_the_object_and_one_notification(tmp_path: Path, source: Path, key: str) -> None:
    root, inbox = tmp_path / "storage", tmp_path / "notifications"
    storage = LocalStorage(root, announce=announcer(inbox))

    dest = storage.put(source, "scar-av-workflow", key)

    assert dest == root / "scar-av-workflow" / key
    assert dest.read_bytes() == source.read_bytes()
    (notification,) = _notifications(inbox)
    assert notification.suffix == ".json"
    record = _read(notification)
    assert (record.bucket, record.key, record.size) == ("scar-av-workflow", key, 112)
    _no_temporary_files(root, inbox)


def test_put_creates_the_notification_folder(tmp_path: Path, source: Path) -> None:
    inbox = tmp_path / "deep" / "down" / "notifications"
    LocalStorage(tmp_path / "storage", announce=announcer(inbox)).put(source, "b", "k.mp4")
    assert len(_notifications(inbox)) == 1


def test_put_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    inbox = tmp_path / "notifications"
    LocalStorage(tmp_path / "storage", announce=announcer(inbox)).put(empty, "b", "in/empty.txt")
    (notification,) = _notifications(inbox)
    assert _read(notification).size == 0


def test_put_over_an_object_announces_it_again(tmp_path: Path, source: Path) -> None:
    inbox = tmp_path / "notifications"
    storage = LocalStorage(tmp_path / "storage", announce=announcer(inbox))
    storage.put(source, "b", "in/movie.mp4")
    source.write_bytes(b"shorter")
    storage.put(source, "b", "in/movie.mp4")
    sizes = [_read(path).size for path in _notifications(inbox)]
    assert sizes == [112, 7]


def test_without_notifications_only_the_object_is_written(tmp_path: Path, source: Path) -> None:
    root = tmp_path / "storage"
    storage = LocalStorage(root)
    assert storage.announce is None

    storage.put(source, "b", "in/movie.mp4")
    storage.upload_many([UploadItem(source, "b", "in/again.mp4")])

    written = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    assert written == [
        "source",
        "source/movie.mp4",
        "storage",
        "storage/b",
        "storage/b/in",
        "storage/b/in/again.mp4",
        "storage/b/in/movie.mp4",
    ]


def test_upload_many_notifies_each_object_in_order(tmp_path: Path, source: Path) -> None:
    root, inbox = tmp_path / "storage", tmp_path / "notifications"
    storage = LocalStorage(root, announce=announcer(inbox))
    keys = [f"video/part-{n}.avi" for n in (3, 1, 2)] + ["audio/track.wav", "video/z a.avi"]

    uris = storage.upload_many([UploadItem(source, "scar-av-workflow", key) for key in keys])

    assert uris == [str(root / "scar-av-workflow" / key) for key in keys]
    notifications = _notifications(inbox)
    # The names sort in the order the objects were written.
    assert [_read(path).key for path in notifications] == keys
    stamps = [int(path.name.partition("-")[0]) for path in notifications]
    assert stamps == sorted(stamps)
    _no_temporary_files(root, inbox)


def test_upload_many_stops_at_the_first_failure_and_announces_only_what_was_written(
    tmp_path: Path, source: Path
) -> None:
    inbox = tmp_path / "notifications"
    storage = LocalStorage(tmp_path / "storage", announce=announcer(inbox))
    items = [
        UploadItem(source, "b", "out/one.mp4"),
        UploadItem(tmp_path / "missing.mp4", "b", "out/two.mp4"),
        UploadItem(source, "b", "out/three.mp4"),
    ]
    with pytest.raises(StagingError) as caught:
        storage.upload_many(items)
    assert caught.value.uploaded == (str(tmp_path / "storage" / "b" / "out" / "one.mp4"),)
    assert [_read(path).key for path in _notifications(inbox)] == ["out/one.mp4"]
    _no_temporary_files(tmp_path)


def test_notify_names(tmp_path: Path) -> None:
    paths = [notify(tmp_path, "b", f"in/{n}.txt", n) for n in range(20)]
    assert sorted(paths) == paths
    assert len({path.name for path in paths}) == 20
    for path in paths:
        stamp, _, rest = path.name.partition("-")
        assert len(stamp) == 20
        assert stamp.isdigit()
        assert rest.endswith(".json")
    assert [_read(path).size for path in paths] == list(range(20))
    _no_temporary_files(tmp_path)


def test_notify_leaves_no_temporary_file_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(source: object, dest: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(notifications.os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        notify(tmp_path, "b", "in/x.txt", 1)
    assert list(tmp_path.iterdir()) == []


def test_a_reader_skips_the_temporary_files(tmp_path: Path, source: Path) -> None:
    inbox = tmp_path / "notifications"
    inbox.mkdir()
    # What a writer leaves for an instant: a reader listing the folder must not take it.
    (inbox / ".tmp-abc123.json").write_text("{")
    LocalStorage(tmp_path / "storage", announce=announcer(inbox)).put(source, "b", "in/m.mp4")
    (notification,) = _notifications(inbox)
    assert _read(notification).key == "in/m.mp4"


# --- settings and the environment of a local job -----------------------------------------


@pytest.mark.parametrize(
    ("environ", "root", "notifications"),
    [
        ({}, None, None),
        ({"SUPERVISOR_STORAGE_ROOT": "/data/storage"}, Path("/data/storage"), None),
        (
            {
                "SUPERVISOR_STORAGE_ROOT": "/data/storage",
                "SUPERVISOR_STORAGE_EVENTS": "/data/events",
            },
            Path("/data/storage"),
            Path("/data/events"),
        ),
        (
            {
                "SUPERVISOR_STORAGE_ROOT": " /data/storage ",
                "SUPERVISOR_STORAGE_EVENTS": " /data/events\n",
            },
            Path("/data/storage"),
            Path("/data/events"),
        ),
        (
            {"SUPERVISOR_STORAGE_ROOT": "/data/storage", "SUPERVISOR_STORAGE_EVENTS": "  "},
            Path("/data/storage"),
            None,
        ),
        # Without a local storage there is nothing to announce.
        ({"SUPERVISOR_STORAGE_EVENTS": "/data/events"}, None, None),
        ({"SUPERVISOR_STORAGE_ROOT": "", "SUPERVISOR_STORAGE_EVENTS": "/data/events"}, None, None),
    ],
)
def test_load_host_facts_storage_events(
    environ: dict[str, str], root: Path | None, notifications: Path | None
) -> None:
    settings = load_host_facts(environ)
    assert settings.storage_root == root
    assert settings.storage_events == notifications


def test_definition_environment_with_storage_events(tmp_path: Path) -> None:
    environment = definition_environment(
        "name: f\n",
        script=None,
        storage_root=tmp_path / "storage",
        storage_events=tmp_path / "notifications",
        environ={"PATH": "/usr/bin", "AWS_SECRET_ACCESS_KEY": "secret"},
    )
    assert environment["SUPERVISOR_STORAGE_ROOT"] == str(tmp_path / "storage")
    assert environment["SUPERVISOR_STORAGE_EVENTS"] == str(tmp_path / "notifications")
    assert base64.b64decode(environment["FUNCTION_CONFIG"]) == b"name: f\n"
    assert "AWS_SECRET_ACCESS_KEY" not in environment
    # What the job reads back.
    settings = load_host_facts(environment)
    assert settings.storage_root == tmp_path / "storage"
    assert settings.storage_events == tmp_path / "notifications"


@pytest.mark.parametrize(
    ("storage_root", "storage_events"),
    [
        (Path("/data/storage"), None),
        # Without a local storage the events folder has no meaning.
        (None, Path("/data/events")),
        (None, None),
    ],
)
def test_definition_environment_without_storage_events(
    storage_root: Path | None, storage_events: Path | None
) -> None:
    environment = definition_environment(
        "name: f\n",
        script="ZWNobyBoaQ==",
        storage_root=storage_root,
        storage_events=storage_events,
        environ={"PATH": "/usr/bin"},
    )
    assert "SUPERVISOR_STORAGE_EVENTS" not in environment
    assert ("SUPERVISOR_STORAGE_ROOT" in environment) is (storage_root is not None)
    assert environment["SCRIPT"] == "ZWNobyBoaQ=="


# --- edge cases ------------------------------------------------------------------------


def test_notifications_sort_in_write_order_on_a_coarse_clock(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock that does not move between two writes, and random parts that happen to fall
    # in decreasing order.
    monkeypatch.setattr(notifications.time, "time_ns", lambda: 1_700_000_000_000_000_000)
    parts = iter(uuid.UUID(int=n) for n in range(100, 0, -1))
    monkeypatch.setattr(notifications.uuid, "uuid4", lambda: next(parts))
    inbox = tmp_path / "notifications"
    storage = LocalStorage(tmp_path / "storage", announce=announcer(inbox))
    keys = ["in/first.mp4", "in/second.mp4", "in/third.mp4"]
    storage.upload_many([UploadItem(source, "b", key) for key in keys])
    assert [_read(path).key for path in _notifications(inbox)] == keys

"""What ``supervisor.shortcuts`` assumes of botocore and PyYAML, pinned: an upgrade that
moves one of these fails here, rather than slowing every invocation, breaking uploads or
reading a definition otherwise."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.config
import botocore.exceptions
import botocore.session
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from botocore.loaders import Loader, create_loader
from botocore.utils import determine_content_length
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from supervisor import shortcuts
from supervisor.sessions import Sessions


class _Body:
    def stream(self) -> Iterator[bytes]:
        yield b""


def test_the_loader_is_made_as_botocore_makes_its_own() -> None:
    made = list(inspect.signature(Loader).parameters)
    assert {"extra_search_paths", "include_default_search_paths"} <= set(made)
    default = create_loader(botocore.session.get_session().get_config_variable("data_path"))
    assert default.search_paths
    assert callable(default.file_loader.exists)


def test_botocore_asks_the_loader_whether_the_service_is_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the method overridden, called with the type name alone."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    asked: list[object] = []
    contains = shortcuts._Services.__contains__

    def spy(self: shortcuts._Services, name: object) -> bool:
        asked.append(name)
        return contains(self, name)

    monkeypatch.setattr(shortcuts._Services, "__contains__", spy)
    session = botocore.session.get_session()
    session.register_component("data_loader", shortcuts.fast_loader(session))

    session.create_client("s3")

    assert "s3" in asked


def test_a_client_is_made_without_listing_every_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore only asks ``name in services`` when it makes a client: the full list, which
    costs a listing of some 450 folders, is never read."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    listed: list[str] = []
    session = botocore.session.get_session()
    loader = shortcuts.fast_loader(session)
    original = Loader.list_available_services

    def listing(self: Loader, type_name: str) -> list[str]:
        listed.append(type_name)
        return original(self, type_name)

    monkeypatch.setattr(Loader, "list_available_services", listing)
    session.register_component("data_loader", loader)

    for service in ("s3", "batch", "logs", "dynamodb"):
        session.create_client(service)

    assert listed == []
    assert Sessions().botocore().get_component("data_loader").__class__.__name__ == "_Loader"


def _expect_header(tmp_path: Path, size: int, *, tweaked: bool) -> Any:
    """The ``Expect`` header of a PutObject of a file of ``size`` bytes, as botocore would
    send it (the request is answered before it leaves the process)."""
    session = botocore.session.get_session()
    session.set_credentials("AKIDEXAMPLE", "not-a-secret")
    client = session.create_client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    if tweaked:
        shortcuts.send_small_bodies_at_once(client)  # type: ignore[arg-type]
    sent: dict[str, Any] = {}

    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        sent["expect"] = request.headers.get("Expect")
        return AWSResponse(request.url, 200, {}, _Body())

    client.meta.events.register("before-send.s3.PutObject", answer)
    path = tmp_path / "body.bin"
    path.write_bytes(b"x" * size)
    with path.open("rb") as body:
        client.put_object(Bucket="bucket", Key="key", Body=body)
    return sent["expect"]


@pytest.mark.parametrize(
    ("size", "tweaked", "expected"),
    [
        (1000, False, "100-continue"),
        (1000, True, None),
        (shortcuts.SMALL_BODY, True, None),
        (shortcuts.SMALL_BODY + 1, True, "100-continue"),
    ],
)
def test_botocore_asks_100_continue_and_a_small_body_goes_without(
    tmp_path: Path, size: int, tweaked: bool, expected: str | None
) -> None:
    expect = _expect_header(tmp_path, size, tweaked=tweaked)
    assert (expect.decode() if isinstance(expect, bytes) else expect) == expected


def _batch_client_to_nowhere() -> Any:
    """A Batch client whose endpoint nothing listens on: a request that left would fail."""
    session = botocore.session.get_session()
    session.set_credentials("AKIDEXAMPLE", "not-a-secret")
    return session.create_client(
        "batch",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=botocore.config.Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )


_SUBMIT = {"jobName": "a", "jobQueue": "q", "jobDefinition": "d"}


def test_a_rehearsal_goes_through_the_client_and_sends_nothing() -> None:
    client = _batch_client_to_nowhere()
    signed: list[bytes] = []
    client.meta.events.register_last(
        "before-send.batch.SubmitJob",
        lambda request, **kwargs: signed.append(request.headers.get("Authorization", b"")),
    )

    shortcuts.rehearse(client, "submit_job", _SUBMIT)

    assert len(signed) == 1
    assert signed[0].startswith(b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


def test_after_a_rehearsal_the_next_call_is_sent() -> None:
    client = _batch_client_to_nowhere()
    shortcuts.rehearse(client, "submit_job", _SUBMIT)

    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.submit_job(**_SUBMIT)


def test_a_rehearsal_checks_the_parameters_as_a_call_does() -> None:
    client = _batch_client_to_nowhere()

    with pytest.raises(botocore.exceptions.ParamValidationError):
        shortcuts.rehearse(client, "submit_job", {"jobName": "a"})
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.submit_job(**_SUBMIT)


def test_determine_content_length_reads_a_files_size(tmp_path: Path) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(b"x" * 1234)
    with path.open("rb") as body:
        assert determine_content_length(body) == 1234


# PROPERTY_EXAMPLES=5000 for a longer search.
PROPERTY = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)


@PROPERTY
@given(
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    st.sampled_from([None, 0, 2, "\t"]),
    st.sampled_from([None, (",", ":"), (" , ", " : ")]),
    st.booleans(),
)
@example({"k" * 1100: 1}, None, None, True)
@example({"a": 1e-7, "b": float("inf")}, None, None, True)
def test_a_json_definition_reads_as_yaml_reads_it(
    data: dict[str, Any], indent: int | str | None, separators: Any, ascii_only: bool
) -> None:
    """JSON is read by the json module (sparing PyYAML's import) only where PyYAML reads it
    alike: an escape, an exponent, a tab and the like send it to PyYAML."""
    text = json.dumps(data, indent=indent, separators=separators, ensure_ascii=ascii_only)
    fast = shortcuts.plain_json_mapping(text)
    if fast is None:
        return
    assert repr(fast) == repr(yaml.safe_load(text))

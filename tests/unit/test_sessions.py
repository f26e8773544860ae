"""The supervisor's botocore session: one for all clients, and a loader that answers
``name in services`` without listing every service, exactly as botocore's listing would."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError

from supervisor.sessions import Sessions, create_client


@pytest.mark.parametrize("type_name", ["service-2", "endpoint-rule-set-1", "waiters-2"])
def test_the_services_are_those_botocore_lists(type_name: str) -> None:
    listed = botocore.session.get_session().get_component("data_loader")
    services = Sessions().botocore().get_component("data_loader")

    expected = listed.list_available_services(type_name)
    answered = services.list_available_services(type_name)

    assert list(answered) == expected
    for name in [*expected, "no-such-service", "", ".", "..", "s3/../batch", "S3"]:
        assert (name in answered) == (name in expected), name


def test_clients_share_the_session_and_an_unknown_service_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sessions = Sessions()

    batch = sessions.botocore().create_client("batch")
    s3 = sessions.boto3().client("s3")

    assert sessions.boto3()._session is sessions.botocore()
    assert (batch.meta.service_model.service_name, s3.meta.service_model.service_name) == (
        "batch",
        "s3",
    )
    with pytest.raises(UnknownServiceError, match="no-such-service"):
        sessions.botocore().create_client("no-such-service")


def test_a_client_of_its_own_has_the_timeouts_and_retries_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sessions = Sessions()

    shared = create_client(
        "batch", session=sessions.botocore, connect_timeout=1.5, read_timeout=4, max_attempts=1
    )
    own = create_client("dynamodb", connect_timeout=1, read_timeout=2, max_attempts=2)

    assert (shared.meta.config.connect_timeout, shared.meta.config.read_timeout) == (1.5, 4)
    assert shared.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert own.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert own.meta.service_model.service_name == "dynamodb"

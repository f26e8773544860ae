"""``supervisor.signals.stopping`` with real signals sent to this process."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from supervisor import signals


@pytest.fixture(autouse=True)
def restore_handlers() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in signals.STOP_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_first_signal_unwinds_the_block(signum: int, code: int) -> None:
    cleaned = []
    with signals.stopping() as stop:
        try:
            os.kill(os.getpid(), signum)
            pytest.fail("the signal did not stop the block")
        finally:
            cleaned.append(True)
            # A second signal during the clean-up changes nothing.
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            cleaned.append(True)

    assert cleaned == [True, True]
    assert stop.stopped
    assert stop.signum == signum
    assert stop.exit_code == code
    assert stop.name == signal.Signals(signum).name


def test_without_a_signal_the_handlers_come_back() -> None:
    before = {signum: signal.getsignal(signum) for signum in signals.STOP_SIGNALS}
    with signals.stopping() as stop:
        assert signal.getsignal(signal.SIGTERM) != before[signal.SIGTERM]
    assert not stop.stopped
    assert stop.name == ""
    with pytest.raises(ValueError, match="no stop signal"):
        _ = stop.exit_code
    assert {signum: signal.getsignal(signum) for signum in signals.STOP_SIGNALS} == before


def test_errors_pass_through() -> None:
    with pytest.raises(RuntimeError, match="boom"), signals.stopping() as stop:
        raise RuntimeError("boom")
    assert not stop.stopped

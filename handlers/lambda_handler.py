"""The AWS Lambda entry point: ``handlers.lambda_handler.handler``.

The supervisor (definition loaded and validated, logging set up, clients created) is built
once per execution environment and reused by the warm invocations.  Where Lambda runs this
module (``AWS_LAMBDA_RUNTIME_API`` is set) it is built while the module is imported: Lambda
runs that init phase with a whole CPU whatever the function's memory size, where an
invocation of a 128 MB function gets about 7% of one.  A supervisor that cannot be built
there (a definition with a fault) is built again by the first invocation, which raises the
fault as an invocation error, so that the event is kept for retries.  A function that hands
events to Batch also rehearses its first submission there (``Supervisor.rehearse``).

Outcomes become the response deployment tools expect; a bad event is a 400; an invocation
that could neither finish nor be handed to Batch raises, so that Lambda's retries and
failure destination keep the event (callers of an API see a 500 with a one-line reason
instead).  A batch of SQS messages of which only some failed answers with their ids
(``batchItemFailures``), so that the others are not delivered again; when every message
failed it raises.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from supervisor import responses
from supervisor.context import InvocationContext
from supervisor.errors import EventError, InvocationError, SupervisorError
from supervisor.events import is_api_request

if TYPE_CHECKING:
    from supervisor.context import LambdaContextLike
    from supervisor.runtime import Outcome, Supervisor

__all__ = ["built", "handler", "reset"]

# Set by the Lambda runtime (zip and image) for its runtime client; never set outside it.
_RUNTIME_API = "AWS_LAMBDA_RUNTIME_API"

logger = logging.getLogger(__name__)
Serve = Callable[[Any, "LambdaContextLike"], dict[str, Any]]
_built: tuple[Supervisor, Serve] | None = None


def handler(event: Any, context: LambdaContextLike) -> dict[str, Any]:
    _, serve = _build()
    return serve(event, context)


def built() -> Supervisor | None:
    """The supervisor this execution environment built, or ``None`` before the first invocation."""
    return None if _built is None else _built[0]


def reset() -> None:
    """Forget the built supervisor (the next invocation builds it again, as a cold start)."""
    global _built
    _built = None


def _build() -> tuple[Supervisor, Serve]:
    global _built
    if _built is None:
        from supervisor import bootstrap, logs

        definition = bootstrap.load(os.environ)
        config = definition.config
        powertools = logs.configure_lambda(
            config.log_level, service=config.name, secrets=definition.secrets
        )
        supervisor = bootstrap.start(definition, os.environ)
        serve: Serve = powertools.inject_lambda_context(_serve_with(supervisor), clear_state=True)
        _built = (supervisor, serve)
    return _built


def _serve_with(supervisor: Supervisor) -> Serve:
    def serve(event: Any, context: LambdaContextLike) -> dict[str, Any]:
        invocation = InvocationContext.from_lambda(context)
        synchronous = is_api_request(event)
        try:
            outcome = supervisor.invoke(event, invocation)
        except EventError as exc:
            logger.warning("Bad event: %s", exc)
            return responses.error(400, f"Bad event: {exc}", invocation)
        except SupervisorError as exc:
            logger.error("Invocation failed: %s", exc)
            return _fail(synchronous, str(exc), invocation)
        except Exception:
            logger.exception("Invocation failed on an unexpected error")
            return _fail(synchronous, "internal error (see the function's log)", invocation)
        return _respond(outcome, synchronous, invocation)

    return serve


def _respond(outcome: Outcome, synchronous: bool, invocation: InvocationContext) -> dict[str, Any]:
    if outcome.status == "failed":
        logger.error("Invocation failed: %s", outcome.summary())
        failed = outcome.failed_messages
        if failed and len(failed) < len(outcome.message_ids):
            logger.warning(
                "%d of %d SQS message(s) failed, to be delivered again: %s",
                len(failed),
                len(outcome.message_ids),
                " ".join(failed),
            )
    response = responses.for_outcome(outcome, synchronous, invocation)
    if response is None:
        raise InvocationError(outcome.summary()) from None
    return response


def _fail(synchronous: bool, message: str, invocation: InvocationContext) -> dict[str, Any]:
    if synchronous:
        return responses.error(500, message, invocation)
    raise InvocationError(message) from None


def _build_during_init() -> None:
    if not os.environ.get(_RUNTIME_API):
        return
    # The build creates some hundred thousand objects that live as long as the process
    # (modules, classes, the models, the clients' data), and the cyclic collector would walk
    # them over and over while they are made: paused, the init phase is about a sixth
    # shorter.  They are then frozen, so that no invocation's collection walks them again
    # (at 128 MB a full walk would take a warm invocation hundreds of milliseconds).  The
    # few hundred objects the build leaves unreachable stay, frozen with them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        supervisor, _ = _build()
        supervisor.rehearse()
    except Exception:  # built again, and raised, by the first invocation
        return
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


_build_during_init()

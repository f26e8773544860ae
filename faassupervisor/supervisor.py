"""``faassupervisor.supervisor.main``: the entry that SCAR's function handler calls.

It hands the event and the Lambda context to ``handlers.lambda_handler.handler``, so a
function deployed by SCAR gets the same response and the same errors as one whose handler
is ``handlers.lambda_handler.handler``.  faas-supervisor also ran its ``main`` as a
stand-alone binary with no context; here that is ``python -m supervisor``.

SCAR's handler file imports this module in Lambda's init phase; importing the handler
module here builds the supervisor there, as for ``handlers.lambda_handler.handler``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.lambda_handler import handler
from supervisor.errors import ConfigError

if TYPE_CHECKING:
    from supervisor.context import LambdaContextLike

__all__ = ["main"]


def main(event: Any, context: LambdaContextLike | None = None) -> dict[str, Any]:
    """Run one Lambda invocation; ``context`` is the Lambda runtime's context object."""
    if context is None:
        raise ConfigError(
            "faassupervisor.supervisor.main: context is None: it runs only as a Lambda "
            "handler; run python -m supervisor outside Lambda"
        )
    return handler(event, context)

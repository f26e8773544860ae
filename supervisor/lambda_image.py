"""The AWS Lambda container-image runtime: ``python -m supervisor`` with ``AWS_LAMBDA_RUNTIME_API``.

A function packaged as a container image has no managed runtime to call the handler: the
image's entry point must talk to the Lambda Runtime API itself.  ``serve`` hands that loop
to awslambdaric (the AWS Lambda Runtime Interface Client, the ``image`` extra), in this
process, with the same handler the zip runtime calls, ``handlers.lambda_handler.handler``.
awslambdaric asks the Runtime API for the next event, calls the handler and posts what it
returns to ``/response``, or what it raises to ``/error``; the supervisor built on the first
invocation serves every warm one of the execution environment.

The handler tells the platform apart by ``AWS_EXECUTION_ENV`` (see
``config.load_host_facts``).  Lambda sets ``AWS_Lambda_Image`` there for a deployed image, but
the runtime interface emulator and images not built on an AWS base image leave it unset,
and an AWS base image's own entry script sets the managed runtime's name
(``AWS_Lambda_python3.12``), which would mean the zip runtime and its udocker containers.
Being started through ``python -m supervisor`` with ``AWS_LAMBDA_RUNTIME_API`` set is itself
proof of the image runtime, so ``serve`` sets ``AWS_EXECUTION_ENV=AWS_Lambda_Image`` in the
process environment before awslambdaric starts: the script then runs as a plain process in
the image.  The script never sees that variable (its environment is built afresh).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from supervisor.errors import SupervisorError

__all__ = [
    "HANDLER",
    "IMAGE_EXECUTION_ENV",
    "RUNTIME_API_VARIABLE",
    "RuntimeClientMissingError",
    "mark_image_runtime",
    "serve",
]

HANDLER = "handlers.lambda_handler.handler"
RUNTIME_API_VARIABLE = "AWS_LAMBDA_RUNTIME_API"
IMAGE_EXECUTION_ENV = "AWS_Lambda_Image"
# The extra that brings awslambdaric, from a clone or from the release's wheel.
_INSTALL = "pip install '.[image]' in a clone, or 'serverless_supervisor-VERSION.whl[image]'"


class RuntimeClientMissingError(SupervisorError):
    """awslambdaric, which talks to the Lambda Runtime API, cannot be imported."""


def mark_image_runtime(environ: MutableMapping[str, str]) -> None:
    """Make ``environ`` say "Lambda container-image runtime" to ``config.load_host_facts``."""
    if not environ.get("AWS_EXECUTION_ENV", "").startswith(IMAGE_EXECUTION_ENV):
        environ["AWS_EXECUTION_ENV"] = IMAGE_EXECUTION_ENV


def serve(environ: MutableMapping[str, str], handler: str = HANDLER) -> int:
    """Serve the invocations of this execution environment until Lambda stops it.

    ``environ`` is the process environment (``os.environ``): awslambdaric and the handler
    read it, and awslambdaric's native client reads ``AWS_LAMBDA_RUNTIME_API`` from the
    process itself.  awslambdaric's loop does not return; a handler that cannot be imported
    is posted to ``/runtime/init/error`` and ends the process through ``SystemExit``.

    Raises ``RuntimeClientMissingError`` when awslambdaric is not installed, and
    ``SupervisorError`` when ``AWS_LAMBDA_RUNTIME_API`` is not set.
    """
    if not environ.get(RUNTIME_API_VARIABLE, "").strip():
        raise SupervisorError(f"{RUNTIME_API_VARIABLE} is not set: not in a Lambda function")
    try:
        from awslambdaric.__main__ import main as run_runtime_client
    except ImportError as exc:
        raise RuntimeClientMissingError(
            f"the Lambda container-image runtime needs awslambdaric ({_INSTALL}): {exc}"
        ) from exc
    mark_image_runtime(environ)
    # The first argument is where the function's code lies, as AWS's own bootstrap passes
    # it; awslambdaric 3 and 4 ignore it (the handler is imported from the installed package).
    task_root = environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    run_runtime_client([task_root, handler])
    return 0

"""Benchmark driver for faas-supervisor 1.5.8: its Lambda handler.

Run by ``bench/run.py`` under the interpreter of the benchmark environment of
faas-supervisor (``bench/.venv-theirs``); see ``common.py``.
"""

from __future__ import annotations

import importlib

from common import Handler, main


def load() -> Handler:
    module = importlib.import_module("faassupervisor.faas.aws_lambda.function_handler")
    handler: Handler = module.lambda_handler
    return handler


if __name__ == "__main__":
    main(load)

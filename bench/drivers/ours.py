"""Benchmark driver for serverless-supervisor: its Lambda zip-runtime handler.

Run by ``bench/run.py`` under the project's interpreter; see ``common.py``.
"""

from __future__ import annotations

from common import Handler, main


def load() -> Handler:
    from handlers.lambda_handler import handler

    return handler


if __name__ == "__main__":
    main(load)

#!/usr/bin/env python3
"""Benchmark serverless-supervisor ("ours") against faas-supervisor 1.5.8 ("theirs").

    .venv/bin/python bench/run.py                   # everything (about 4 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick           # a smoke test: fewer runs, smaller data
    .venv/bin/python bench/run.py --cases 1,2 --theirs-python /path/to/python
    .venv/bin/python bench/run.py --ours-only       # no faas-supervisor environment needed
    .venv/bin/python bench/run.py --lambda-memory 128,512,1769   # at Lambda sizes (cgroup v1, root)

faas-supervisor runs in a virtual environment of its own, ``bench/.venv-theirs``, created on
first use (``--no-deps``, as its wheel's requirement string is malformed, plus its
dependencies with the same boto3 as ours), or the interpreter given by ``--theirs-python``.
Ours runs on the working tree and its layer's tree, ``bench/.layer-ours``, built on first use
by ``layer/build.py`` (``--ours-path`` gives another path).

Cases: 1 cold start, 2 warm batch-mode delegation, 3 warm small invocation, 4 many output
files (against the server, then behind a proxy adding 20 ms per request), 5 a big input and
output, 6 the watchdog at the deadline, 7 a chatty script (100 MiB of stdout).
How each is measured is in each case's docstring in ``bench/harness/cases/``; the package
``bench/harness`` says what each of its modules does.
"""

from __future__ import annotations

import sys

# Run as a script, the folder of this file comes first on sys.path: the package is there.
from harness.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""The interpreters the drivers run under: the project's, and faas-supervisor's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from harness.settings import ROOT, THEIRS_DEPS, THEIRS_VENV, THEIRS_VERSION


def ensure_interpreter() -> None:
    """Run under the project's virtual environment (boto3, moto), re-executing if needed."""
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        venv = ROOT / ".venv"
        if (venv / "bin" / "python").exists() and Path(sys.prefix) != venv:
            python = str(venv / "bin" / "python")
            os.execv(python, [python, *sys.argv])  # noqa: S606 (this script, another interpreter)
        raise SystemExit(
            "bench/run.py needs boto3 and moto[server]: run it with the project's "
            "environment (./build.sh test creates .venv), e.g. .venv/bin/python bench/run.py"
        ) from None


def ensure_theirs(python: str | None) -> str:
    """The interpreter of faas-supervisor's environment; create bench/.venv-theirs if needed."""
    check = ["-c", "import faassupervisor.supervisor, boto3, yaml"]
    if python is not None:
        if subprocess.run([python, *check], capture_output=True).returncode != 0:
            raise SystemExit(f"--theirs-python {python}: cannot import faassupervisor there")
        return python
    venv_python = THEIRS_VENV / "bin" / "python"
    if (
        venv_python.exists()
        and subprocess.run([str(venv_python), *check], capture_output=True).returncode == 0
    ):
        return str(venv_python)
    print(f"creating {THEIRS_VENV.relative_to(ROOT)} (faas-supervisor {THEIRS_VERSION})...")
    shutil.rmtree(THEIRS_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(THEIRS_VENV)], check=True)
    pip = [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # Its wheel's requirement "webdavclient3 (==3.14.6requests)" breaks pip >= 24.1: take the
    # package alone, then its dependencies, with the same SDK as ours for a fair comparison.
    sdk = [f"{name}=={metadata.version(name)}" for name in ("boto3", "botocore", "s3transfer")]
    for step in (["--no-deps", f"faas-supervisor=={THEIRS_VERSION}"], [*sdk, *THEIRS_DEPS]):
        done = subprocess.run([*pip, *step], capture_output=True, text=True)
        # pip's resolver warns that the malformed requirement is unmet: expected, ignored.
        if done.returncode != 0:
            raise SystemExit(f"pip install {' '.join(step)} failed:\n{done.stdout}{done.stderr}")
    if subprocess.run([str(venv_python), *check]).returncode != 0:
        raise SystemExit(f"{venv_python}: faas-supervisor does not import")
    return str(venv_python)


def import_path(python: str) -> str:
    """The site-packages of ``python``, for ``-S`` runs of faas-supervisor.

    A Lambda finds a layer's packages on ``PYTHONPATH`` (``/opt/python``); a development
    install adds ``.pth`` files instead, so both implementations start without site
    processing (ours on its layer's tree: ``harness.layer``).
    """
    code = "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); print(p['platlib'])"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return os.pathsep.join(dict.fromkeys(line for line in done.stdout.splitlines() if line))

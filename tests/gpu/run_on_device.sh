#!/usr/bin/env bash
# Run the GPU device checks (tests/gpu) on a machine with an NVIDIA GPU:
#   bash tests/gpu/run_on_device.sh          (from anywhere; it works in the repository root)
# Prints nvidia-smi, creates a virtual environment outside the repository that also sees
# the system's packages (a PyTorch already installed there is used), installs the project
# with its test extras and, when missing, PyTorch (the CUDA build from PyPI), then runs
# pytest on tests/gpu and prints which checks passed or were skipped and why.
# Needs nothing but PyPI; bounded to about 8 minutes.  PYTHON (default python3) and
# GPU_VENV (default $TMPDIR/serverless-supervisor-gpu-venv) choose the interpreter and venv.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

PYTHON=${PYTHON:-python3}
VENV=${GPU_VENV:-${TMPDIR:-/tmp}/serverless-supervisor-gpu-venv}
PY="$VENV/bin/python"
PIP=(-m pip install -q --disable-pip-version-check --progress-bar off)
started=$SECONDS

step() { printf '==> [%3ds] %s\n' "$((SECONDS - started))" "$*"; }

step "nvidia-smi"
nvidia-smi || echo "nvidia-smi failed or is missing: the GPU checks will be skipped"

step "virtual environment $VENV ($("$PYTHON" -V 2>&1))"
if [ ! -x "$PY" ]; then
  "$PYTHON" -m venv --system-site-packages "$VENV" || { echo "cannot create $VENV"; exit 1; }
  # When PYTHON is itself a virtual environment, --system-site-packages skips its packages.
  "$PYTHON" -c 'import site; print("\n".join(site.getsitepackages()))' \
    >"$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_base_site.pth"
fi

step "pip install -e .[test]"
if ! timeout 180 "$PY" "${PIP[@]}" -e ".[test]"; then
  echo "installing the project failed (is PyPI reachable?)"
  exit 1
fi

if "$PY" -c "import torch" 2>/dev/null; then
  step "PyTorch already installed"
else
  step "pip install torch"
  timeout 360 "$PY" "${PIP[@]}" torch || echo "installing torch failed: the CUDA check will be skipped"
fi
"$PY" - <<'PYEOF' || true
import torch
print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU available:", torch.cuda.is_available())
PYEOF

step "pytest tests/gpu"
"$PY" -m pytest -q -rs -p no:cacheprovider tests/gpu
status=$?
step "done: pytest exited with $status"
exit "$status"

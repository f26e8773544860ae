#!/usr/bin/env bash
# Set up, check and demonstrate serverless-supervisor.
#   ./build.sh demo   create .venv, install, run the local example
#   ./build.sh demo-workflow  the paper's audio/video workflow on this machine
#   ./build.sh test   install what the tests need, run the checks (as check does) and pytest
#   ./build.sh check  ruff, ruff format --check, mypy, the import contracts and the docs build only
#   ./build.sh docs   regenerate docs/schema/function.json, build the manual into build/site/
#   ./build.sh layer  build the Lambda Layer zips into build/layer/
#   ./build.sh binary build build/binary/supervisor, the static executable for Batch/OSCAR jobs
#   ./build.sh release  the wheel, sdist, layer zips and binary in build/release/, with SHA256SUMS
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VENV:-.venv}
PY="$VENV/bin/python"

log() { printf '==> %s\n' "$*" >&2; }

ensure_venv() {
  if [ ! -x "$PY" ]; then
    log "creating $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      log "python3-venv is missing: installing it with apt-get"
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$VENV"
    fi
    "$PY" -m pip install -q --upgrade pip
  fi
}

install() {
  ensure_venv
  log "installing serverless-supervisor${1:+ with [$1]}"
  if ! "$PY" -m pip install -q -e ".${1:+[$1]}" >"$VENV/install.log" 2>&1; then
    cat "$VENV/install.log" >&2
    exit 1
  fi
}

apt_install() {
  if [ $# -gt 0 ]; then
    log "installing $* with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

media_packages() {
  # The audio/video workflow example: FFmpeg splits and converts, espeak-ng speaks the
  # test videos' sound track.
  local missing=()
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  command -v espeak-ng >/dev/null || missing+=(espeak-ng)
  apt_install "${missing[@]}"
}

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

binary_packages() {
  # layer/binary.py bundles with the distribution's own Python (PyInstaller needs its shared
  # libpython from python3-dev) and makes the bundle static with staticx, which runs
  # patchelf and binutils' objcopy and strip.
  local missing=()
  [ -x /usr/bin/python3 ] || missing+=(python3)
  installed python3-venv || missing+=(python3-venv)
  installed python3-dev || missing+=(python3-dev)
  command -v patchelf >/dev/null || missing+=(patchelf)
  command -v objcopy >/dev/null || missing+=(binutils)
  apt_install "${missing[@]}"
}

system_packages() {
  # The container tests run a real udocker container with Debian's proot on a busybox image;
  # the binary's tests build it (binary_packages) and ask file(1) what it is.
  local missing=()
  command -v proot >/dev/null || missing+=(proot)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v file >/dev/null || missing+=(file)
  # SCAR packs a function's zip with /usr/bin/zip (tests/e2e/test_scar.py runs SCAR).
  [ -x /usr/bin/zip ] || missing+=(zip)
  apt_install "${missing[@]}"
  binary_packages
  media_packages
}

check() {
  log "ruff"
  "$VENV/bin/ruff" check .
  "$VENV/bin/ruff" format --check .
  log "mypy --strict"
  "$VENV/bin/mypy"
  "$VENV/bin/mypy" --strict layer/build.py layer/archive.py layer/binary.py layer/release.py
  "$VENV/bin/mypy" --strict bench/run.py bench/harness
  log "import contracts"
  # [tool.importlinter] in pyproject.toml: entry points -> runtime -> components -> config.
  "$VENV/bin/lint-imports" --no-cache
  docs_site --check
}

docs_site() {
  # The definition's JSON Schema is generated from supervisor/config/: --check fails when
  # the committed file is stale, otherwise it is rewritten. The site goes to build/site/.
  log "docs"
  "$PY" docs/hooks/reference.py "$@"
  # Not --quiet: it hides the warnings that --strict counts.
  "$VENV/bin/mkdocs" build --strict
}

case "${1:-help}" in
  demo)
    install
    "$PY" examples/demo/run_demo.py "${@:2}"
    ;;
  demo-workflow)
    media_packages
    install examples
    "$PY" examples/av-workflow/run_demo.py "${@:2}"
    ;;
  test)
    system_packages
    install test
    check
    log "pytest"
    # FFmpeg, espeak-ng, OpenCV and pocketsphinx were installed above: their absence fails
    # the audio/video workflow test instead of skipping it.
    SUPERVISOR_REQUIRE_MEDIA=1 "$VENV/bin/pytest" "${@:2}"
    ;;
  check)
    install test
    check
    ;;
  docs)
    install docs
    docs_site
    ;;
  layer)
    install
    "$PY" layer/build.py "${@:2}"
    ;;
  binary)
    binary_packages
    # layer/binary.py uses only the standard library and builds in its own environment.
    python3 layer/binary.py "${@:2}"
    ;;
  release)
    # --no-binary leaves the slow binary out; --python and --arch go to the layer build.
    install
    case " ${*:2} " in *" --no-binary "*) ;; *) binary_packages ;; esac
    "$PY" -m pip install -q build
    "$PY" layer/release.py "${@:2}"
    ;;
  *)
    sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
    [ "${1:-help}" = help ] || exit 2
    ;;
esac

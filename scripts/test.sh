#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (what CI runs via .ci/run).
# - Debian packages the tests use as real peers: PulseAudio (a virtual microphone), PortAudio,
#   liblo-tools (oscdump), mono-mcs (the Unity client's C#), chromium (the browser preview), ffmpeg.
# - A virtual environment in .venv with torch pinned to the CPU wheel (an unpinned torch pulls CUDA).
# - The wheel check runs inside pytest (tests/test_wheel.py, marked slow, ~15 s): `pip wheel --no-deps`
#   with this venv's setuptools, installed into a fresh venv outside the checkout that borrows this
#   venv's packages, then `transflower live --demo` from it and a check that it imports only declared
#   dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="pulseaudio pulseaudio-utils libportaudio2 sox alsa-utils liblo-tools mono-mcs ffmpeg chromium"
if command -v apt-get >/dev/null 2>&1; then
  missing=$(for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing Debian packages: $missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip "setuptools>=77" wheel   # setuptools: the wheel check builds without isolation
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[cpu,train,dev]"

export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.numba_cache}"
python -m pytest -q -ra "$@"

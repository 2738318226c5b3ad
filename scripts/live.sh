#!/usr/bin/env bash
# Set up (runtime only: no torch) and run the main job: a live dance on the shipped model, streamed
# over OSC (VMC protocol) to 127.0.0.1:39539. Without an input device it dances to the built-in
# synthesised track. Extra arguments go to `transflower live` (e.g. --preview, --input song.ogg).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1 && ! dpkg -s libportaudio2 >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libportaudio2 >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[cpu]"
exec transflower live "$@"

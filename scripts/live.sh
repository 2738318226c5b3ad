#!/usr/bin/env bash
# Set up (runtime only: no torch) and run the main job: a live dance on the shipped model, streamed
# over OSC (VMC protocol) to 127.0.0.1:39539. Without an input device it dances to the built-in
# synthesised track. Extra arguments go to `transflower live` (e.g. --preview, --input song.ogg).
#
# The first run creates .venv and installs (needs the package index, about a minute). Later runs start
# at once and work offline: the install is redone only when pyproject.toml (or the Python) changes,
# detected by a stamp holding their hash. TRANSFLOWER_REINSTALL=1 forces a reinstall.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1 && ! dpkg -s libportaudio2 >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libportaudio2 >/dev/null
fi
PY=${PYTHON:-python3}
EXTRA=cpu
[ -x .venv/bin/python ] || "$PY" -m venv .venv
STAMP=.venv/.transflower-installed
# what the install depends on: the dependency list, the extra, and the venv's Python
want=$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest(), sys.argv[1], sys.version.split()[0])' "$EXTRA")
if [ "${TRANSFLOWER_REINSTALL:-0}" != "1" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x .venv/bin/transflower ]; then
  :  # installed for this pyproject.toml: start at once, no package index needed
else
  echo "installing transflower-live into .venv (once; later runs start at once) ..." >&2
  rm -f "$STAMP"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$EXTRA]"
  echo "$want" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
fi
exec .venv/bin/transflower live "$@"

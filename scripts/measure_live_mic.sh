#!/usr/bin/env bash
# Measure the live path end to end on a real (virtual) microphone: PulseAudio null sink -> its monitor
# as the input device -> `transflower bench soak --device pulse` (late frames, jitter, step latency,
# audio-in -> OSC-out latency, CPU share, memory). Needs pulseaudio, pulseaudio-utils, libportaudio2.
#   bash scripts/measure_live_mic.sh SONG.ogg SECONDS [extra soak options, e.g. --model M.onnx --threads 1]
set -euo pipefail
cd "$(dirname "$0")/.."
song=${1:?song file}; seconds=${2:-60}; shift 2 || true
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg}; mkdir -p -m700 "$XDG_RUNTIME_DIR"
started=0
if ! pactl info >/dev/null 2>&1; then
  pulseaudio -n --daemonize=no --exit-idle-time=-1 -L module-native-protocol-unix \
    -L "module-null-sink sink_name=vsink" -L module-always-sink >/tmp/pulse.log 2>&1 &
  started=$!
  for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
fi
pactl list short sinks | grep -q vsink || pactl load-module module-null-sink sink_name=vsink >/dev/null
export PULSE_SOURCE=vsink.monitor PULSE_SINK=vsink
# play the song in a loop for as long as the measurement runs
( end=$((SECONDS + seconds + 10)); while [ $SECONDS -lt $end ]; do paplay -d vsink "$song" || sleep 1; done ) &
player=$!
trap 'kill $player 2>/dev/null || true; [ "$started" != 0 ] && kill $started 2>/dev/null || true' EXIT
. .venv/bin/activate
transflower bench soak --device pulse --duration "$seconds" "$@"

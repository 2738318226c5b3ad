"""How smooth the stream looks in a VMC receiver that does no interpolation, per send rate (--fps).

    python scripts/measure_send_rate.py [--seconds 20] [--rates 20 30 60] [--model M.onnx]

For each rate: runs `transflower live --demo` streaming to a local VmcReceiver (bone positions on, so the
receiver can do FK), records every frame's arrival time and hand positions, then replays the arrivals on a
60 Hz display that shows the newest frame at each refresh (what EVMC4U, VSeeFace and Warudo do with
interpolation off). Prints per rate: refreshes that repeat the previous pose, judder (95th percentile /
mean hand displacement per refresh: 1.0 is perfectly even motion), and from the run's summary the step
time, late frames and audio-in -> pose-out latency (which includes the interpolation's one model frame).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from transflower.bridge.preview import vmc_frame_positions  # noqa: E402
from transflower.bridge.retarget import UNITY_BONES  # noqa: E402
from transflower.bridge.vmc import VmcReceiver  # noqa: E402

HANDS = [UNITY_BONES.index("LeftHand"), UNITY_BONES.index("RightHand")]


def run(rate: float, seconds: float, model: str | None) -> dict:
    arrivals, hands = [], []
    lock = threading.Lock()

    def on_frame(f):
        if len(f.bones) < 22:  # the second bundle of a frame completes it
            return
        with lock:
            arrivals.append(f.received_at)
            hands.append(vmc_frame_positions(f)[HANDS].copy())

    with VmcReceiver(0, on_frame=on_frame) as rx, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.json"
        cmd = [sys.executable, "-m", "transflower.cli", "live", "--demo", "--seed", "1", "--duration", str(seconds),
               "--fps", str(rate), "--osc", f"127.0.0.1:{rx.port}", "--bone-positions", "skeleton",
               "--status-interval", "0", "--summary-json", str(out)]
        if model:
            cmd += ["--model", model]
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
        time.sleep(0.3)
        summary = json.loads(out.read_text())
    with lock:
        t = np.array(arrivals)
        h = np.array(hands)
    keep = t <= t[0] + seconds - 0.6  # the stream, not the eased stop at its end
    t, h = t[keep], h[keep]
    refresh = np.arange(t[0] + 0.5, t[-1], 1 / 60)  # a 60 Hz display, from half a second in
    shown = np.searchsorted(t, refresh, side="right") - 1
    step = np.linalg.norm(np.diff(h[shown], axis=0), axis=2).max(axis=1)  # the faster hand's move per refresh
    repeated = float(np.mean(np.diff(shown) == 0))
    moving = step[step > 0]
    return {"fps": rate, "refreshes": len(refresh), "repeated_refreshes": round(repeated, 3),
            "judder_p95_over_mean": round(float(np.percentile(step, 95) / max(step.mean(), 1e-9)), 2),
            "mean_move_per_moving_refresh_mm": round(1000 * float(moving.mean()), 1) if len(moving) else 0.0,
            "step_ms_p50": summary["step_ms"]["p50"], "step_ms_p99": summary["step_ms"]["p99"],
            "late": summary["late"], "skipped": summary["skipped"], "latency_ms_p50": summary["latency_ms"]["p50"],
            "interpolation_ms": summary["interpolation_ms"]}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rates", type=float, nargs="+", default=[20.0, 30.0, 60.0])
    p.add_argument("--model")
    a = p.parse_args()
    rows = [run(r, a.seconds, a.model) for r in a.rates]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a `transflower live` run did: `LiveSummary` (every figure, for --summary-json and the run's log
folder), `summarize(session)` and `human_summary(summary)`, the few lines printed at exit.

    danced 3 min 2 s to demo:120bpm-seed0; stopped by Ctrl-C
    10920 frames at 60 fps: 12 late, 8 skipped; 0 engine resets
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from transflower.errors import UserError


@dataclass
class LiveSummary:
    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    model_fps: float = 0.0
    late: int = 0
    skipped: int = 0
    dancers: int = 1
    step_ms: dict = field(default_factory=dict)
    engine_ms: dict = field(default_factory=dict)
    host_ms: dict = field(default_factory=dict)
    startup_s: float | None = None
    latency_ms: dict = field(default_factory=dict)
    engine_resets: int = 0
    engine_redraws: int = 0
    grounding_cm: float | None = None  # the root-height corrections Grounding made, summed over frames (None: off)
    traction_cm: float | None = None  # the travel Grounding's traction took out under planted feet, summed (None: off)
    # --time-base: the clock's rate at the end, the style tempo it was measured against (None: relative to the
    # music's own), the model steps taken (rate x frames at the model's rate) and the count-in's seconds; None without
    # a time base
    time_base: dict | None = None
    engine_errors: int = 0
    audio_rows: int = 0
    audio_level_db: float = -120.0
    # frames sent with no new audio row since the previous frame (the last row is reused): at 60 fps over a
    # 20 fps model two frames in three, by design; at the model's rate, audio arriving in bursts
    frames_without_new_audio: int = 0
    silent_frames: int = 0
    audio_outages: int = 0
    audio_recoveries: int = 0
    audio_reopen_attempts: int = 0
    audio_overruns: int = 0
    audio_dropped_samples: int = 0
    udp_errors: int = 0
    udp_sent: int = 0
    overload_hints: int = 0
    source: str = ""
    provider: str = ""
    lookahead_ms: float = 0.0
    interpolation_ms: float = 0.0
    gc: dict = field(default_factory=dict)
    control_messages: int = 0
    control_errors: int = 0
    stopped_by: str = ""
    priority: str = "normal"
    memory: str = "unlocked"


def summarize(session) -> LiveSummary:
    """The figures of a LiveSession that has run (or is running)."""
    s, c, t = session, session.clock, session.times
    wd, feats, lat, targets = s.watchdog, s.feats, s.latency_ms, s.vmc.targets
    ground = s.engine.ground
    return LiveSummary(
        frames=s.frames_sent, seconds=round(s.frames_sent / s.fps, 2), fps=s.fps, model_fps=s.model_fps,
        late=c.late, skipped=c.skipped, dancers=s.dancers,
        step_ms=t.step.summary(), engine_ms=t.engine.summary(), host_ms=t.host.summary(),
        startup_s=None if s.startup_s is None else round(s.startup_s, 3),
        latency_ms={"p50": round(lat.pct(50), 3), "p99": round(lat.pct(99), 3),
                    "max": round(float(lat.values().max()), 3) if lat.n else None, "n": int(lat.n)},
        engine_resets=s.engine.stats.resets, engine_redraws=s.engine.stats.resampled,
        grounding_cm=None if ground is None else round(ground.moved_cm, 1),
        traction_cm=None if ground is None else round(ground.held_cm, 1),
        time_base=None if s.engine.time_base is None else {
            "rate": round(s.engine.time_base.rate, 3), "style_bpm": s.engine.time_base.style_bpm,
            "model_steps": int(s.engine.stats.steps),
            # the count-in's length (the dancer listened, swaying), None while it is still on
            "count_in_s": None if s.engine.time_base.counting_in else round(
                s.engine.time_base.listened_frames / s.engine.time_base.reading.fps, 2)},
        engine_errors=s.engine_errors,
        audio_rows=feats.rows if feats else 0, audio_level_db=round(feats.level_db, 2) if feats else -120.0,
        frames_without_new_audio=s.frames_without_new_audio, silent_frames=s.silent_frames,
        audio_outages=wd.outages if wd else 0, audio_recoveries=wd.recoveries if wd else 0,
        audio_reopen_attempts=wd.reopen_attempts if wd else 0,
        audio_overruns=wd.overruns() if wd else 0,
        audio_dropped_samples=(feats.dropped_samples + feats._ring_dropped()) if feats else 0,
        udp_errors=int(sum(x.failed + x.refused for x in targets)),
        udp_sent=int(sum(x.sent for x in targets)),
        overload_hints=s.overload_hints,
        source=s.source.name if s.source is not None else "", provider=s.model.provider,
        lookahead_ms=1000 * s.lookahead / s.model_fps,
        interpolation_ms=1000.0 / s.model_fps if s.interpolate else 0.0,
        gc=s.gc_watch.summary() if s.gc_watch else {},
        control_messages=s.controls.applied if s.controls is not None else 0,
        control_errors=s.controls.errors if s.controls is not None else 0, stopped_by=s.stopped_by,
        priority=s.priority, memory=s.memory,
    )


STOPPED_BY = {"SIGINT": "Ctrl-C", "SIGTERM": "a stop signal (SIGTERM)", "duration": "--duration",
              "end of input": "the end of the input"}


def duration_text(seconds: float) -> str:
    """12.5 s, 3 min 2 s, 1 h 02 min."""
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    m = int(s // 60)
    return f"{m} min {int(s % 60)} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def human_summary(s: LiveSummary, json_paths=()) -> str:
    """A few lines for people: how long, to what, how it stopped, what went wrong (only what did)."""
    lines = [f"danced {duration_text(s.seconds)} to {s.source or 'nothing'}; stopped by "
             f"{STOPPED_BY.get(s.stopped_by, s.stopped_by or 'an error')}",
             f"{s.frames} frames at {s.fps:g} fps: {s.late} late, {s.skipped} skipped; {s.engine_resets} engine resets"]
    lat = s.latency_ms or {}
    if lat.get("n"):  # what a streamer sets as the music's delay so viewers see the dance on the beat they hear
        behind = lat["p50"] + (s.lookahead_ms or 0.0) + (s.interpolation_ms or 0.0)
        lines.append(f"the avatar trails the music by {behind:.0f} ms (measured {lat['p50']:.0f} ms in -> out, p99 "
                     f"{lat['p99']:.0f}, + {s.lookahead_ms or 0:.0f} ms lookahead + {s.interpolation_ms or 0:.0f} ms "
                     "interpolation): delay streamed music by that (OBS: Sync Offset, docs/receivers.md)")
    if s.udp_errors:
        when = "" if s.udp_errors >= 0.9 * s.udp_sent else " for part of the show"
        lines.append(f"{s.udp_errors} of {s.udp_sent} sends were refused or failed: no receiver was listening{when}")
    if s.audio_outages:
        lines.append(f"the audio input was lost {s.audio_outages} times and came back {s.audio_recoveries} times")
    if json_paths:
        lines.append("summary JSON: " + ", ".join(str(p) for p in json_paths))
    return "\n".join(lines)


def write_summary_json(s: LiveSummary, summary_json=None, log_path=None) -> list[Path]:
    """The summary as JSON, written atomically to --summary-json and beside the run's log file (if there is
    one: `<log>.summary.json`). Returns the files written; an unwritable --summary-json is a UserError."""
    from transflower.atomic import write_text_atomic

    text = json.dumps(s.__dict__, indent=1)
    written = []
    if summary_json:
        try:
            write_text_atomic(summary_json, text)
        except OSError as e:
            raise UserError(f"--summary-json {summary_json}: cannot write it ({e.strerror or e})") from None
        written.append(Path(summary_json))
    if log_path is not None:
        p = Path(log_path).with_suffix(".summary.json")
        try:
            write_text_atomic(p, text)
            written.append(p)
        except OSError:  # the log folder is a convenience: the show already ended well
            pass
    return written

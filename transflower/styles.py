"""Style labels -> the weights a style-conditioned model takes (torch-free: the live engine uses it too).

A model with styles takes S weights over its style names, entry 0 = "auto" (the music decides); its
style embedding is linear in them, so a blend of two styles is a blend of weights, and the style
*strength* s puts s on the asked style and 1 - s on "auto": 1 is the label as trained, 0 is "auto",
and s > 1 extrapolates the embedding away from "auto" (the style's embedding plus s - 1 times its
difference from auto's). That makes the dancer obey the label more than the music, at a price in
smoothness: experiments/2026-11-benchmark-history.md, "Style strength", has the measured trade-off.

A model may also carry, per style (its metadata / shipped checkpoint, written by `transflower export`):
- a *seed clip* (`style_seeds`): a real dance of that style that `live --style` / `generate --style` warm
  start on, so the dancer begins in the style instead of turning into it from another dance;
- a *preset* (`style_presets`): multipliers on the strength and the sampling temperature while that
  style is asked for ("rumba: {strength: 1.5, temperature: 0.67}"), and optionally the noise
  correlation to sample it at (`correlation: 0.8`, a value, not a multiplier: see
  `transflower.realtime.engine.DanceEngine`) and the traction that keeps its planted feet from sliding (`traction: 0.5`, a
  value: transflower.floor.Grounding; 0 without it), chosen per style by `transflower bench style --split train`
  (experiments/2026-11-benchmark-history.md, "Style presets"): a style the model blurs into its neighbour dances more
  clearly a little stronger and calmer.
"""
from __future__ import annotations

import math

import numpy as np

from transflower.control_spec import CORRELATION, STYLE_STRENGTH
from transflower.errors import UserError

MAX_STYLE_STRENGTH = STYLE_STRENGTH.hi
MAX_NOISE_CORRELATION = CORRELATION.hi


def check_strength(strength, what: str = "style strength") -> float:
    """A style strength (0 = auto, 1 = as trained), or UserError naming `what` and the range."""
    return STYLE_STRENGTH.check(strength, what)


PRESET_RANGES = {"strength": (0.0, MAX_STYLE_STRENGTH), "temperature": (0.05, 4.0),  # multipliers
                 "correlation": (0.0, MAX_NOISE_CORRELATION), "traction": (0.0, 1.0)}  # values
VALUE_KEYS = ("correlation", "traction")


def check_noise_correlation(value, what: str = "noise correlation") -> float:
    """The AR(1) coefficient of the sampling noise (0 = independent draws, as trained), or UserError."""
    return CORRELATION.check(value, what)


def check_presets(presets, styles: list[str], where: str = "style presets") -> dict:
    """{style: {"strength": x, "temperature": y}} (both optional multipliers, default 1) -> a clean copy.
    UserError naming the style and field for an unknown style or key, a non-number or a value out of range."""
    if presets in (None, {}):
        return {}
    if not isinstance(presets, dict):
        raise UserError(f"{where}: expected a mapping style -> {{strength: x, temperature: y}}, got {type(presets).__name__}")
    out = {}
    for style, p in presets.items():
        if style not in styles or style == "auto":
            raise UserError(f"{where}: style {style!r}: expected one of {[s for s in styles if s != 'auto']}")
        if not isinstance(p, dict):
            raise UserError(f"{where}: {style}: expected {{strength: x, temperature: y}}, got {p!r}")
        clean = {}
        for key, value in p.items():
            if key not in PRESET_RANGES:
                raise UserError(f"{where}: {style}.{key}: unknown; expected {sorted(PRESET_RANGES)}")
            lo, hi = PRESET_RANGES[key]
            try:
                v = float(value)
            except (TypeError, ValueError):
                v = float("nan")
            if not (math.isfinite(v) and lo <= v <= hi):
                what = "a value" if key in VALUE_KEYS else "a multiplier"
                raise UserError(f"{where}: {style}.{key} {value!r}: expected {what} in {lo:g}..{hi:g}"
                                + ("" if key in VALUE_KEYS else " (1 = no change)"))
            clean[key] = v
        out[style] = clean
    return out


def load_presets(path, styles: list[str]) -> dict:
    """A YAML file of presets (see check_presets) -> the clean mapping."""
    from pathlib import Path

    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise UserError(f"{p}: cannot read style presets ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise UserError(f"{p}: not valid YAML ({e})") from None
    return check_presets(data, styles, where=str(p))


def preset_of(presets: dict | None, style) -> tuple[float, float]:
    """(strength multiplier, temperature multiplier) for a style; (1, 1) for auto or a style without one."""
    p = (presets or {}).get(style) or {}
    return float(p.get("strength", 1.0)), float(p.get("temperature", 1.0))


def preset_correlation(presets: dict | None, style, base: float) -> float:
    """The noise correlation a style is sampled at: its preset's, else `base` (auto's, the model's default)."""
    p = (presets or {}).get(style) or {}
    return float(p.get("correlation", base))


def preset_traction(presets: dict | None, style) -> float:
    """How much of a planted foot's slide a style's dancer is kept from (transflower.floor.Grounding): its
    preset's, else 0 (auto: off)."""
    p = (presets or {}).get(style) or {}
    return float(p.get("traction", 0.0))


def preset_style(style, styles: list[str], strength: float = 1.0, presets: dict | None = None):
    """A style asked for at `strength` with its preset -> (weights as style_weights gives them, temperature
    multiplier): the strength times the preset's, capped at MAX_STYLE_STRENGTH. What the engine, torch
    generation and the benchmarks all do with a style name."""
    p_strength, p_temp = preset_of(presets, style)
    return style_weights(style, styles, min(check_strength(strength) * p_strength, MAX_STYLE_STRENGTH)), p_temp


def style_weights(style, styles: list[str], strength: float = 1.0):
    """A style name -> float32 weights over `styles` (index 0 "auto"); None / "auto" -> None (the model's
    auto). UserError for a model without styles, an unknown name or a strength outside 0..4."""
    if style in (None, "auto"):
        return None
    if not styles:
        raise UserError(f"--style {style}: this model has no style input")
    if style not in styles:
        raise UserError(f"--style {style}: expected one of {list(styles)}")
    s = check_strength(strength)
    w = np.zeros(len(styles), np.float32)
    w[0] = 1.0 - s
    w[list(styles).index(style)] += s
    return w

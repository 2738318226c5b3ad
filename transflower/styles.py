"""Style labels -> the weights a style-conditioned model takes (torch-free: the live engine uses it too).

A model with styles takes S weights over its style names, entry 0 = "auto" (the music decides); its
style embedding is linear in them, so a blend of two styles is a blend of weights, and the style
*strength* s puts s on the asked style and 1 - s on "auto": 1 is the label as trained, 0 is "auto",
and s > 1 extrapolates the embedding away from "auto" (the style's embedding plus s - 1 times its
difference from auto's). That makes the dancer obey the label more than the music, at a price in
smoothness: benchmarks/README.md, "Style strength", has the measured trade-off.
"""
from __future__ import annotations

import math

import numpy as np

from transflower.errors import UserError

MAX_STYLE_STRENGTH = 4.0  # beyond this the extrapolated label is far from anything seen in training


def check_strength(strength, what: str = "style strength") -> float:
    try:
        s = float(strength)
    except (TypeError, ValueError):
        raise UserError(f"{what} {strength!r}: expected a number in 0..{MAX_STYLE_STRENGTH:g} (1 = as trained)") from None
    if not (math.isfinite(s) and 0.0 <= s <= MAX_STYLE_STRENGTH):
        raise UserError(f"{what} {strength!r}: expected a number in 0..{MAX_STYLE_STRENGTH:g} (1 = as trained)")
    return s


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

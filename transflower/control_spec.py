"""Every live-controllable parameter of the dancer, defined once: its name, OSC address, arguments,
range, default and meaning (torch-free, stdlib only: the live path, the engine, offline generation and
the tests all read it).

Who reads it:
- `transflower live`'s options and --config file (transflower.realtime.live_options.validate: the same bounds);
- the OSC / MIDI / preview-page validator (transflower.realtime.control.parse_control) and MIDI maps (transflower.realtime.midi);
- the engine's setters (transflower.realtime.engine: temperature; transflower.styles: style strength, noise correlation);
- the preview server (transflower.bridge.preview: the page's addresses, argument types and ranges);
- tests/test_control_spec.py, which checks docs/control.md and the README against it.

One range per parameter, everywhere: a value the command line accepts can also be reached from a
controller, and a controller cannot push the engine past what the command line allows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from transflower.errors import UserError

PREFIX = "/transflower/"


@dataclass(frozen=True)
class Param:
    """One live control. `kind`: "number" (a float in lo..hi), "style" (a style name of the model or its
    index), "switch" (0 or 1), "action" (no value) or "unavailable" (refused with `meaning` as the reason)."""
    name: str             # the OSC address's last part; the key of the status values and the summary
    kind: str
    meaning: str          # one line: what it does
    lo: float | None = None
    hi: float | None = None
    default: object = None            # the value when nothing sets it
    default_text: str = ""            # how the docs state the default when it is not just `default`
    option: str | None = None         # the `transflower live` option that sets it at start
    model_key: str | None = None      # the model metadata key that may give its own default
    hint: str = ""                    # the landmark value, for error messages: "1 = as trained"
    bare: str = ""                    # what a message without an argument does ("" = it needs one)
    page_args: str | None = "f"       # the argument types the preview page sends (None: not on the page)

    @property
    def address(self) -> str:
        return PREFIX + self.name

    @property
    def dest(self) -> str | None:
        """The attribute `option` sets on argparse's namespace (and its --config key)."""
        return None if self.option is None else self.option[2:].replace("-", "_")

    @property
    def range_text(self) -> str:
        return f"{self.lo:g}..{self.hi:g}" if self.kind == "number" else ""

    @property
    def default_doc(self) -> str:
        """The default as docs/control.md states it."""
        if self.default_text:
            return self.default_text
        if isinstance(self.default, (int, float)):
            return f"{self.default:g}"
        return "" if self.default is None else str(self.default)

    def contains(self, value: float) -> bool:
        return math.isfinite(value) and self.lo <= value <= self.hi

    def check(self, value, what: str | None = None) -> float:
        """`value` as a float within lo..hi, else UserError naming `what` (default: the name) and the range."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")
        if not self.contains(v):
            hint = f" ({self.hint})" if self.hint else ""
            raise UserError(f"{what or self.name.replace('_', ' ')} {value!r}: expected a number in {self.range_text}{hint}")
        return v


TEMPERATURE = Param(
    "temperature", "number", "sampling temperature: 0 calm/average, 1 as trained, above 1 wilder",
    # above 2 the sampled noise swamps the learnt motion (jerk already 1.77x the real dances' at 0.6)
    0.0, 2.0, 1.0, default_text="the model's own, else 1", option="--temperature",
    model_key="default_temperature", hint="1 = as trained")
STYLE = Param(
    "style", "style", "auto (the music decides) or a style of the model, by name or index; blended in over ~1 s",
    default="auto", option="--style", page_args="s")
STYLE_STRENGTH = Param(
    "style_strength", "number", "how strongly the style beats the music: 1 as trained, 0 = auto, above 1 clearer "
    "and jerkier",
    # beyond 4 the extrapolated style label is far from anything seen in training
    0.0, 4.0, 1.0, option="--style-strength", hint="1 = as trained")
CORRELATION = Param(
    "correlation", "number", "how alike consecutive frames' sampling noise is: 0 as trained, higher is smoother",
    # beyond 0.95 the noise hardly changes within a second: the dance freezes into slow drifts
    0.0, 0.95, 0.0, default_text="the style's preset, else the model's own, else 0", option="--noise-correlation",
    model_key="default_noise_correlation", hint="0 = independent draws", bare="back to the styles' presets")
HOLD = Param(
    "hold", "switch", "1 freezes the pose (the same pose is sent every frame), 0 resumes", default=0,
    bare="toggles", page_args="i")
RESET = Param(
    "reset", "action", "back to the warm-started seed motion", bare="resets", page_args="")
GAIN = Param(
    "gain", "number", "input gain: multiplies the audio the model hears; 0 mutes it, 1 unchanged",
    # 16 = +24 dB, enough to bring a quiet line-in to the training level
    0.0, 16.0, 1.0, option="--input-gain", hint="1 = unchanged")
ENERGY = Param(
    "energy", "unavailable", "model has no energy input (no shipped model is conditioned on energy)",
    page_args=None)

CONTROLS = (TEMPERATURE, GAIN, STYLE, STYLE_STRENGTH, CORRELATION, HOLD, RESET)  # what a controller may set
PARAMS = {p.name: p for p in CONTROLS + (ENERGY,)}                                # + addresses refused with a reason
NUMBERS = tuple(p.name for p in CONTROLS if p.kind == "number")


def param_of(address) -> Param | None:
    """The Param an OSC address names, or None."""
    if isinstance(address, str) and address.startswith(PREFIX):
        return PARAMS.get(address[len(PREFIX):])
    return None

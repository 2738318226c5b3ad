"""MIDI control: a controller's knobs (CC) and pads (notes) -> the same control messages as OSC.

    MIDI port --rtmidi thread callback--> MidiMapper.controls(msg) -> [(address, args)]
        -> ControlInput.submit(address, args, "midi")   (validated and queued like OSC; transflower.realtime.control)

The map is YAML (docs/midi_map_example.yaml; the built-in DEFAULT_MAP when --midi-map is not given):

    channel: all            # or 1..16 (as musicians count): only that channel is listened to
    cc:                     # controller number -> a continuous parameter, 0..127 mapped linearly
      1: {param: temperature, min: 0.0, max: 1.5}
      7: {param: gain, min: 0.0, max: 4.0}
      64: {param: hold}     # a pedal/switch CC: >= 64 holds, < 64 resumes
    notes:                  # note number -> an action on note-on (velocity > 0)
      36: reset
      37: hold              # toggles
      40: {style: auto}
      41: {style: cha-cha}
      44: {correlation: preset}   # a performer's noise correlation off again (a CC sets one)

mido and python-rtmidi are the optional `[midi]` extra; without them `--midi`/`--list-midi` fail with
one line saying how to install it. The mapper itself needs no MIDI library (it reads `msg.type`,
`msg.channel`, `msg.control`, `msg.value`, `msg.note`, `msg.velocity`), so it is tested without ports.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from transflower.control_spec import NUMBERS, PARAMS, PREFIX
from transflower.errors import UserError

log = logging.getLogger("transflower.midi")

INSTALL_HINT = ("MIDI needs the optional extra: pip install 'transflower-live[midi]' "
                "(or: pip install mido python-rtmidi)")

DEFAULT_MAP = {
    "channel": "all",
    "cc": {1: {"param": "temperature", "min": 0.0, "max": 1.5},
           7: {"param": "gain", "min": 0.0, "max": 4.0}},
    "notes": {36: "reset", 37: "hold",
              40: {"style": "auto"}, 41: {"style": "cha-cha"}, 42: {"style": "rumba"}, 43: {"style": "waltz"}},
}
CC_PARAMS = NUMBERS + ("hold",)                 # a knob sweeps a number's range; a pedal is the hold switch
NOTE_VALUE_PARAMS = ("style", "hold") + NUMBERS  # a pad sets one value


@dataclass
class MidiMap:
    channel: int | None = None                       # 0-based MIDI channel, None = all
    cc: dict = field(default_factory=dict)           # number -> (param, lo, hi)
    notes: dict = field(default_factory=dict)        # number -> (address, args)

    def style_names(self) -> list[str]:
        return [args[0] for address, args in self.notes.values() if address.endswith("/style")]


def _midi_number(where: str, k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 127:
        raise UserError(f"{where}: {k!r} is not a MIDI number 0..127")
    return k


def _real(where: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise UserError(f"{where}: expected a number, got {v!r}")
    return float(v)


def parse_midi_map(cfg, source: str = "midi map") -> MidiMap:
    """Validate a map (the YAML's content) -> MidiMap; UserError naming the field otherwise. Ranges are
    transflower.control_spec's: a knob's min/max and a pad's value must lie within the parameter's."""
    if not isinstance(cfg, dict):
        raise UserError(f"{source}: expected a mapping with keys channel, cc, notes")
    unknown = set(cfg) - {"channel", "cc", "notes"}
    if unknown:
        raise UserError(f"{source}: unknown keys {sorted(map(str, unknown))}; expected channel, cc, notes")
    ch = cfg.get("channel", "all")
    if ch in (None, "all"):
        channel = None
    elif isinstance(ch, int) and not isinstance(ch, bool) and 1 <= ch <= 16:
        channel = ch - 1
    else:
        raise UserError(f"{source}: channel: expected all or 1..16, got {ch!r}")
    out = MidiMap(channel=channel)
    cc = cfg.get("cc") or {}
    if not isinstance(cc, dict):
        raise UserError(f"{source}: cc: expected a mapping of controller number -> {{param: ..., min: ..., max: ...}}")
    for k, spec in cc.items():
        where = f"{source}: cc {k}"
        num = _midi_number(f"{source}: cc", k)
        if not isinstance(spec, dict) or spec.get("param") not in CC_PARAMS:
            raise UserError(f"{where}: expected {{param: {' | '.join(CC_PARAMS)}, min: ..., max: ...}}, got {spec!r}")
        param = spec["param"]
        extra = set(spec) - {"param", "min", "max"}
        if extra:
            raise UserError(f"{where}: unknown keys {sorted(map(str, extra))}; expected param, min, max")
        if param == "hold":
            if "min" in spec or "max" in spec:
                raise UserError(f"{where}: hold is a switch (>= 64 holds); it takes no min/max")
            out.cc[num] = ("hold", 0.0, 1.0)
            continue
        lo = _real(f"{where}: min", spec.get("min", PARAMS[param].lo))
        hi = _real(f"{where}: max", spec.get("max", PARAMS[param].hi))
        for name, v in (("min", lo), ("max", hi)):
            if not PARAMS[param].contains(v):
                raise UserError(f"{where}: {name} {v:g} is outside the {param} range {PARAMS[param].range_text}")
        out.cc[num] = (param, lo, hi)
    notes = cfg.get("notes") or {}
    if not isinstance(notes, dict):
        raise UserError(f"{source}: notes: expected a mapping of note number -> action")
    for k, spec in notes.items():
        where = f"{source}: notes {k}"
        num = _midi_number(f"{source}: notes", k)
        if spec == "reset":
            out.notes[num] = (PREFIX + "reset", ())
        elif spec == "hold":
            out.notes[num] = (PREFIX + "hold", ())  # no argument: toggle
        elif isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in NOTE_VALUE_PARAMS:
            (param, value), = spec.items()
            if param == "correlation" and value == "preset":  # back to the styles' presets
                out.notes[num] = (PREFIX + "correlation", ())
                continue
            if param == "style":
                if not isinstance(value, str) or not value:
                    raise UserError(f"{where}: style: expected a style name, got {value!r}")
            elif param == "hold":
                if value not in (0, 1) or isinstance(value, float):
                    raise UserError(f"{where}: hold: expected 0 or 1, got {value!r}")
                value = int(value)
            else:
                value = _real(f"{where}: {param}", value)
                if not PARAMS[param].contains(value):
                    raise UserError(f"{where}: {param} {value:g} is outside {PARAMS[param].range_text}")
            out.notes[num] = (PREFIX + param, (value,))
        else:
            raise UserError(f"{where}: expected reset, hold, or one of {{style: NAME}}, {{hold: 0|1}}, "
                            f"{{temperature: X}}, {{gain: X}}, {{style_strength: X}}, {{correlation: X|preset}}; "
                            f"got {spec!r}")
    return out


def load_midi_map(path=None) -> MidiMap:
    """The YAML map at `path`, or DEFAULT_MAP when None."""
    if path is None:
        return parse_midi_map(DEFAULT_MAP, "built-in midi map")
    import yaml

    p = Path(path)
    try:
        cfg = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise UserError(f"--midi-map {p}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--midi-map {p}: cannot read it ({e})") from None
    except yaml.YAMLError as e:
        raise UserError(f"--midi-map {p}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_midi_map(cfg, f"--midi-map {p}")


class MidiMapper:
    """MIDI message -> control messages (address, args), per the map. Pure: no ports, no state."""

    def __init__(self, midi_map: MidiMap):
        self.map = midi_map

    def controls(self, msg) -> list[tuple[str, tuple]]:
        m = self.map
        kind = getattr(msg, "type", None)
        if kind not in ("control_change", "note_on"):
            return []  # note-off, clock, aftertouch, sysex...: not mapped
        if m.channel is not None and getattr(msg, "channel", None) != m.channel:
            return []
        if kind == "control_change":
            spec = m.cc.get(msg.control)
            if spec is None:
                return []
            param, lo, hi = spec
            if param == "hold":
                return [(PREFIX + "hold", (int(msg.value >= 64),))]
            return [(PREFIX + param, (lo + (hi - lo) * msg.value / 127.0,))]
        if msg.velocity == 0:  # note-on with velocity 0 is a note-off by MIDI convention
            return []
        spec = m.notes.get(msg.note)
        return [] if spec is None else [spec]


def _mido():
    try:
        import mido
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    try:
        import rtmidi  # noqa: F401  mido's default backend
    except ImportError:
        raise UserError(INSTALL_HINT + " (python-rtmidi is missing)") from None
    return mido


def list_midi_inputs() -> list[str]:
    mido = _mido()
    try:
        return list(mido.get_input_names())
    except Exception as e:  # noqa: BLE001  rtmidi raises its own SystemError when there is no MIDI system
        raise UserError(f"no MIDI system available ({str(e).strip()[:160]}); on Linux that needs the ALSA "
                        "sequencer (/dev/snd/seq)") from None


def resolve_port(device, names: list[str]) -> str:
    """--midi DEVICE: an index in the list, an exact name, or a unique case-insensitive part of one."""
    d = str(device)
    if d.isdigit() and int(d) < len(names):
        return names[int(d)]
    if d in names:
        return d
    hits = [n for n in names if d.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    listing = "; ".join(f"{i}: {n}" for i, n in enumerate(names)) or "none"
    what = "matches several ports" if hits else "matches no port"
    raise UserError(f"--midi {d!r}: {what} (MIDI inputs: {listing})")


class MidiInput:
    """An open MIDI input port whose messages go through the mapper into `controls.submit`
    (from rtmidi's callback thread; submit only validates and appends to a deque)."""

    def __init__(self, device, midi_map: MidiMap, controls):
        mido = _mido()
        self.name = resolve_port(device, list_midi_inputs())
        self.mapper, self.controls = MidiMapper(midi_map), controls
        try:
            self.port = mido.open_input(self.name, callback=self._on_message)
        except Exception as e:  # noqa: BLE001
            raise UserError(f"--midi {self.name!r}: cannot open it ({str(e).strip()[:160]})") from None
        log.info("control: listening to MIDI input %r", self.name)

    def _on_message(self, msg) -> None:
        try:
            for address, args in self.mapper.controls(msg):
                self.controls.submit(address, args, source="midi")
        except Exception as e:  # noqa: BLE001  a malformed message must not end MIDI control for the show
            self.controls._reject(f"midi: {type(e).__name__}: {e}")

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001  shutting down
            pass

"""Live control of the dancer: controller messages -> validated changes -> applied once per frame.

    OSC controller --UDP--> receiver thread: transflower.bridge.osc.decode (strict) -> parse_control -> queue
    preview page --WebSocket--> PreviewServer -> ControlInput.on_control(address, args) -> same
    MIDI controller --rtmidi thread--> transflower.realtime.midi.MidiMapper -> ControlInput.submit -> same
    live loop, once per frame before the step: ControlInput.apply(session) (a session frame hook)

Every source goes through one validator (`parse_control`), so OSC, MIDI and the preview page accept
exactly the same things. Producers only append `(param, value, source)` tuples to a deque (append and
popleft are atomic in CPython: no lock between the producers and the loop); the loop drains it at the
next frame, sets the engine's attributes and logs what changed. A bad message (garbage bytes, unknown
address, wrong type, out of range, a style the model lacks) is counted and logged (rate-limited) and
changes nothing: the show goes on.

The addresses, their arguments, ranges and defaults are defined once in transflower.control_spec
(docs/control.md has the table with examples; tests/test_control_spec.py keeps the two equal).
"""
from __future__ import annotations

import logging
import math
import socket
import threading
from collections import deque

from transflower.control_spec import CONTROLS, GAIN, PREFIX, STYLE, STYLE_STRENGTH, TEMPERATURE, param_of
from transflower.errors import UserError

log = logging.getLogger("transflower.control")

# Not a VMC port: VMC receivers (Marionette) listen on 39539 and VMC performers take assistants on 39540;
# nor VRChat (9000/9001), TouchOSC's defaults (8000/9000) or Resolume (7000).
DEFAULT_CONTROL_PORT = 39550
ADDRESSES = tuple(p.address for p in CONTROLS)
HOLD_TOGGLE = -1
MAX_PENDING = 1024      # a flood beyond this (per frame) is dropped and counted
LOG_FIRST_ERRORS = 20   # then one error line per LOG_EVERY_ERRORS, so garbage cannot flood the log
LOG_EVERY_ERRORS = 100


class ControlError(ValueError):
    """A control message that is refused (the text says what was expected)."""


def _number(address: str, args, lo: float, hi: float) -> float:
    if len(args) != 1:
        raise ControlError(f"{address}: expected one number ({lo:g}..{hi:g}), got {len(args)} arguments")
    v = args[0]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ControlError(f"{address}: expected a number ({lo:g}..{hi:g}), got {type(v).__name__} {str(v)[:40]!r}")
    v = float(v)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ControlError(f"{address}: {v:g} is outside {lo:g}..{hi:g}")
    return v


def _switch(address: str, v) -> bool:
    """0/1 as int, float (TouchOSC buttons send 0.0/1.0) or OSC T/F."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    raise ControlError(f"{address}: expected 0 or 1, got {str(v)[:40]!r}")


def parse_control(address, args, styles=()):
    """Validate one control message -> `(param, value)`, or None for a valid message that asks for
    nothing (a reset button's release). Raises ControlError with the reason otherwise.

    `styles` is the model's style list (index 0 "auto"; empty for a model without styles)."""
    if not isinstance(address, str):
        raise ControlError(f"address: expected a string, got {type(address).__name__}")
    if not isinstance(args, (list, tuple)):
        raise ControlError(f"{address[:60]}: arguments must be a list, got {type(args).__name__}")
    spec = param_of(address)
    name = "" if spec is None else spec.name
    if name == "style_strength" and not styles:
        raise ControlError(f"{address}: this model has no style input (it was trained without style labels)")
    if spec is not None and spec.kind == "number":
        if spec.bare and len(args) == 0:
            return name, None  # correlation: back to the styles' presets
        return name, _number(address, args, spec.lo, spec.hi)
    if name == "style":
        if not styles:
            raise ControlError(f"{address}: this model has no style input (it was trained without style labels)")
        if len(args) != 1:
            raise ControlError(f"{address}: expected one style name or index, got {len(args)} arguments")
        v = args[0]
        if isinstance(v, str):
            if v not in styles:
                raise ControlError(f"{address}: unknown style {v[:40]!r}; this model has {list(styles)}")
            return "style", v
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(styles):
            return "style", styles[v]
        raise ControlError(f"{address}: expected a style name or an index 0..{len(styles) - 1}, got {str(v)[:40]!r}")
    if name == "hold":
        if len(args) == 0:
            return "hold", HOLD_TOGGLE
        if len(args) == 1:
            return "hold", int(_switch(address, args[0]))
        raise ControlError(f"{address}: expected 0, 1 or no argument (toggle), got {len(args)} arguments")
    if name == "reset":
        if len(args) == 0:
            return "reset", None
        if len(args) == 1:
            return ("reset", None) if _switch(address, args[0]) else None
        raise ControlError(f"{address}: expected no argument (or 1 = press, 0 = release), got {len(args)} arguments")
    if spec is not None and spec.kind == "unavailable":
        raise ControlError(f"{address}: {spec.meaning}")
    raise ControlError(f"unknown address {address[:60]!r}; expected one of {', '.join(ADDRESSES)}")


def parse_listen_address(text: str) -> tuple[str, int]:
    """`--control [HOST:]PORT` -> (host, port); the host defaults to 127.0.0.1 (this machine only)."""
    s = str(text).strip()
    host, sep, port_s = s.rpartition(":")
    if not sep:
        host, port_s = "127.0.0.1", s
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_s)
    except ValueError:
        raise UserError(f"--control {text!r}: expected [HOST:]PORT, e.g. {DEFAULT_CONTROL_PORT} or "
                        f"0.0.0.0:{DEFAULT_CONTROL_PORT}") from None
    if not 0 <= port <= 65535 or (sep and not host):
        raise UserError(f"--control {text!r}: expected [HOST:]PORT with a port 0..65535 (0 = any free port)")
    return host, port


class ControlInput:
    """The one place every live control goes through. Thread model: any number of producers
    (`submit`, `on_control`, the OSC thread, the MIDI callback) and one consumer, the live loop's
    frame hook `apply(session)`. The current values (`temperature`, `gain`, `style`, `correlation`,
    `hold`) are what has been applied, read by `status_text()` in the loop."""

    def __init__(self, *, temperature: float = TEMPERATURE.default, gain: float = GAIN.default, styles=(),
                 style: str = STYLE.default, style_strength: float = STYLE_STRENGTH.default):
        self.styles = list(styles)
        self.temperature, self.gain, self.style, self.hold = float(temperature), float(gain), style, False
        self.style_strength = float(style_strength)
        self.correlation = None   # a performer's noise correlation; None: the styles' presets decide
        self.pending: deque = deque()
        self.applied = 0          # changes applied by the loop (control_messages in the summary)
        self.apply_failed = 0     # changes the engine refused when applied (loop thread only)
        self._rejected = 0        # refused by the validator (producer threads: counted under a lock)
        self._count_lock = threading.Lock()
        self.last_error = ""
        self.port = None          # the bound OSC port, once listening
        self.midi = None
        self._sock = None
        self._thread = None
        self._stop = threading.Event()

    # -- producers (any thread) -------------------------------------------------------------------
    def submit(self, address, args=(), source: str = "osc") -> str | None:
        """Validate and queue one message; returns None when queued (or nothing to do), else the reason."""
        try:
            change = parse_control(address, args, self.styles)
        except ControlError as e:
            return self._reject(f"{source}: {e}")
        if change is None:
            return None
        if len(self.pending) >= MAX_PENDING:
            return self._reject(f"{source}: more than {MAX_PENDING} control changes within one frame; dropped")
        self.pending.append((change[0], change[1], source))
        return None

    def on_control(self, address, args) -> str | None:
        """What the preview server calls for {"control": address, "args": [...]} from the page."""
        return self.submit(address, args, source="preview")

    def _reject(self, reason: str) -> str:
        with self._count_lock:
            self._rejected += 1
            n = self._rejected
            self.last_error = reason
        if n <= LOG_FIRST_ERRORS or n % LOG_EVERY_ERRORS == 0:
            log.warning("control message ignored (%d so far): %s", n, reason)
        return reason

    @property
    def errors(self) -> int:
        """Refused messages plus changes the engine refused (control_errors in the summary)."""
        return self._rejected + self.apply_failed

    # -- OSC over UDP -------------------------------------------------------------------------------
    def listen_osc(self, host: str = "127.0.0.1", port: int = DEFAULT_CONTROL_PORT) -> int:
        """Bind UDP host:port (0 = any free port) and receive in a daemon thread; returns the port."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            raise UserError(f"--control {host}:{port}: cannot listen for OSC there ({e.strerror or e})") from None
        sock.settimeout(0.2)  # so close() is noticed promptly
        self._sock, self.port = sock, sock.getsockname()[1]
        self._thread = threading.Thread(target=self._osc_loop, name=f"ControlInput:{self.port}", daemon=True)
        self._thread.start()
        log.info("control: listening for OSC on udp %s:%d (%s%s)", host, self.port, PREFIX,
                 ", ".join(p.name for p in CONTROLS))
        return self.port

    def _osc_loop(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            try:
                data, sender = sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            self.handle_packet(data, sender[0])

    def handle_packet(self, data, sender: str = "?") -> None:
        """One UDP datagram: decode strictly, submit each message (a bundle's in order); never raises."""
        from transflower.bridge.osc import OscDecodeError, decode, iter_messages

        try:
            packet = decode(data)
        except OscDecodeError as e:
            self._reject(f"osc from {sender}: not a valid OSC packet ({e})")
            return
        try:
            for m in iter_messages(packet):
                self.submit(m.address, m.args, source="osc")
        except Exception as e:  # noqa: BLE001  a bug here must not end control for the rest of the show
            self._reject(f"osc from {sender}: {type(e).__name__}: {e}")

    def close(self) -> None:
        self._stop.set()
        if self.midi is not None:
            self.midi.close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._sock is not None:
            self._sock.close()

    # -- the consumer: the live loop, once per frame ----------------------------------------------
    def apply(self, session) -> None:
        """Frame hook: apply every queued change to the session's engine/features, log what changed."""
        pending = self.pending
        if not pending:
            return
        changed = {}
        while pending:
            param, value, source = pending.popleft()
            try:
                self._apply_one(session, param, value)
            except Exception as e:  # noqa: BLE001  UserError for an unknown style, or an engine bug: never stop the show
                self.apply_failed += 1
                self.last_error = f"{source}: {param} {value!r}: {e}"
                log.warning("control: %s", self.last_error)
                continue
            self.applied += 1
            changed[param] = source
        if changed:
            log.info("control: %s", "  ".join(f"{p} {self._value_text(p)} ({s})" for p, s in changed.items()))

    def _apply_one(self, session, param, value) -> None:
        engine = session.engine
        if param == "temperature":
            engine.temperature = value
            self.temperature = value
        elif param == "gain":
            if session.feats is not None:  # read by the loop's feature pull, never by the audio callback
                session.feats.gain = value
            self.gain = value
        elif param == "style":
            engine.set_style(value, blend_s=1.0, strength=self.style_strength)
            self.style = value
        elif param == "style_strength":
            engine.set_style(self.style, blend_s=1.0, strength=value)  # the current style, re-weighted
            self.style_strength = value
        elif param == "correlation":
            engine.set_noise_correlation(value, blend_s=1.0)
            self.correlation = value
        elif param == "hold":
            self.hold = (not self.hold) if value == HOLD_TOGGLE else bool(value)
            session.hold = self.hold
        elif param == "reset":
            engine.reset()

    def _value_text(self, param) -> str:
        return {"temperature": f"{self.temperature:.2f}", "gain": f"{self.gain:.2f}", "style": self.style,
                "style_strength": f"{self.style_strength:.2f}",
                "correlation": "preset" if self.correlation is None else f"{self.correlation:.2f}",
                "hold": "on" if self.hold else "off", "reset": "done"}[param]

    def status_text(self) -> str:
        """The controls part of the live status line, e.g. `T 0.50 style waltz HOLD`."""
        return (f"T {self.temperature:.2f}" + (f" style {self.style}" if self.styles else "")
                + (f" x{self.style_strength:g}" if self.styles and self.style_strength != 1.0 else "")
                + ("" if self.correlation is None else f" rho {self.correlation:.2f}")
                + (f" gain {self.gain:g}" if self.gain != 1.0 else "") + (" HOLD" if self.hold else ""))


def attach_controls(session, args) -> ControlInput | None:
    """Create the ControlInput for `--control` / `--midi` / `--preview` (the page's buttons) and hook it
    into the session's frame loop. Returns None when none of them is on. Raises UserError (port in use,
    missing MIDI extra, bad map)."""
    control_at = getattr(args, "control", None)
    midi_device = getattr(args, "midi", None)
    preview = getattr(session, "preview", None)
    if not control_at and midi_device is None and preview is None:
        return None
    engine = session.engine
    styles = list(getattr(engine, "styles", None) or [])
    controls = ControlInput(temperature=engine.temperature, gain=float(args.input_gain), styles=styles,
                            style=getattr(args, "style", None) or STYLE.default,
                            style_strength=STYLE_STRENGTH.default if getattr(args, "style_strength", None) is None
                            else float(args.style_strength))
    try:
        if control_at:
            controls.listen_osc(*parse_listen_address(control_at))
        if midi_device is not None:
            from transflower.realtime.midi import MidiInput, load_midi_map

            midi_map = load_midi_map(getattr(args, "midi_map", None))
            missing = sorted(set(midi_map.style_names()) - set(styles))
            if missing:
                log.warning("midi map: styles %s are not in this model (%s); those notes will be counted as errors",
                            missing, styles or "it has no style input")
            controls.midi = MidiInput(midi_device, midi_map, controls)
    except BaseException:
        controls.close()
        raise
    if preview is not None:  # the preview server calls preview.on_control(address, args) for the page's controls
        preview.on_control = controls.on_control
    session.frame_hooks.append(controls.apply)
    return controls

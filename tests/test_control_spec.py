"""One definition of the live controls (transflower.control_spec), and everything that states a range,
default or address of one agrees with it: the OSC/MIDI/preview validator, the command line, the engine's
setters, the preview server, docs/control.md's table, and every range or default the docs and README state
next to a control's address or option."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from transflower.realtime.control import ControlError, parse_control
from transflower.realtime.live_options import build_defaults, validate
from transflower.realtime.midi import DEFAULT_MAP, parse_midi_map
from transflower.control_spec import CONTROLS, CORRELATION, PARAMS, STYLE_STRENGTH, TEMPERATURE
from transflower.errors import UserError

REPO = Path(__file__).resolve().parents[1]
CONTROL_MD = REPO / "docs" / "control.md"
PROSE = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
STYLES = ["auto", "cha-cha", "rumba", "waltz"]
NUMBERS = [p for p in CONTROLS if p.kind == "number"]
NUM = r"\d+(?:\.\d+)?"


# ------------------------------------------------------------------------------------ the spec itself
def test_every_number_has_a_range_containing_its_default_and_a_start_option():
    for p in NUMBERS:
        assert p.lo < p.hi and p.contains(p.default) and p.option, p.name
    assert len({p.address for p in PARAMS.values()}) == len(PARAMS)


# ---------------------------------------------------------------- every entry point takes the same bounds
@pytest.mark.parametrize("spec", NUMBERS, ids=lambda p: p.name)
def test_osc_takes_the_range_and_refuses_just_outside_it(spec):
    for ok in (spec.lo, spec.hi):
        assert parse_control(spec.address, (ok,), STYLES) == (spec.name, ok)
    for bad in (spec.lo - 0.01, spec.hi + 0.01):
        with pytest.raises(ControlError) as e:
            parse_control(spec.address, (bad,), STYLES)
        assert str(e.value) == f"{spec.address}: {bad:g} is outside {spec.range_text}"


@pytest.mark.parametrize("spec", NUMBERS, ids=lambda p: p.name)
def test_command_line_and_config_take_the_same_range(spec):
    args = build_defaults()
    setattr(args, spec.dest, spec.hi)
    validate(args)  # the top of the range is fine
    setattr(args, spec.dest, spec.hi + 0.01)
    with pytest.raises(UserError) as e:
        validate(args)
    assert str(e.value) == (f"{spec.option} {spec.hi + 0.01!r}: expected a number in {spec.range_text}"
                            f" ({spec.hint})")


@pytest.mark.parametrize("spec", NUMBERS, ids=lambda p: p.name)
def test_midi_maps_take_the_same_range(spec):
    parse_midi_map({"cc": {1: {"param": spec.name, "min": spec.lo, "max": spec.hi}}})
    with pytest.raises(UserError, match=re.escape(f"outside the {spec.name} range {spec.range_text}")):
        parse_midi_map({"cc": {1: {"param": spec.name, "max": spec.hi + 0.01}}})
    with pytest.raises(UserError, match=re.escape(f"is outside {spec.range_text}")):
        parse_midi_map({"notes": {36: {spec.name: spec.hi + 0.01}}})


def test_command_line_refuses_a_temperature_osc_refuses_with_one_line_and_exit_2():
    out = subprocess.run([sys.executable, "-m", "transflower.cli", "live", "--temperature", "2.5", "--demo"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: --temperature 2.5: expected a number in 0..2 (1 = as trained)"]


@pytest.fixture(scope="module")
def shipped_engine():
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel, default_model_path

    return DanceEngine(OnnxDanceModel(default_model_path(), provider="cpu", threads=1), seed=0)


def test_engine_setters_take_the_same_ranges(shipped_engine):
    e = shipped_engine
    e.set_temperature(TEMPERATURE.hi)
    with pytest.raises(UserError, match=re.escape(f"temperature 2.01: expected a number in {TEMPERATURE.range_text}")):
        e.set_temperature(TEMPERATURE.hi + 0.01)
    e.set_style("waltz", strength=STYLE_STRENGTH.hi)
    with pytest.raises(UserError, match=re.escape(f"expected a number in {STYLE_STRENGTH.range_text}")):
        e.set_style("waltz", strength=STYLE_STRENGTH.hi + 0.01)
    e.set_noise_correlation(CORRELATION.hi)
    with pytest.raises(UserError, match=re.escape(f"expected a number in {CORRELATION.range_text}")):
        e.set_noise_correlation(CORRELATION.hi + 0.01)
    # the shipped model's own defaults lie within the ranges (live starts from them)
    for p in NUMBERS:
        if p.model_key and p.model_key in e.model.meta:
            assert p.contains(float(e.model.meta[p.model_key])), p.name


def test_preview_sends_the_spec_addresses_and_ranges():
    from transflower.bridge.preview import CONTROL_ADDRESSES, CONTROL_RANGES

    assert set(CONTROL_ADDRESSES) == {p.address for p in CONTROLS}
    assert CONTROL_RANGES == {p.address: [p.lo, p.hi] for p in NUMBERS}


# ---------------------------------------------------------------------------------- the docs, checked
def _table_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `/transflower/"):
            rows[cells[0].strip("`")] = cells
    return rows


def test_control_md_table_states_every_address_range_default_and_option_as_the_spec():
    rows = _table_rows(CONTROL_MD.read_text())
    assert set(rows) == {p.address for p in PARAMS.values()}, "docs/control.md's table and the spec name other addresses"
    for address, (_, _, range_cell, default_cell, option_cell, _) in rows.items():
        p = PARAMS[address.rsplit("/", 1)[1]]
        expected_range = {"number": p.range_text, "style": "the model's styles"}.get(p.kind, "")
        assert range_cell == expected_range, f"{address}: range {range_cell!r}, the spec says {expected_range!r}"
        assert default_cell == p.default_doc, f"{address}: default {default_cell!r}, the spec says {p.default_doc!r}"
        assert option_cell == (f"`{p.option}`" if p.option else ""), f"{address}: at start {option_cell!r}"


def _mentions(unit: str):
    """(position, Param) for each control named in `unit`: its OSC address or its `transflower live` option."""
    found = []
    for p in PARAMS.values():
        pats = [re.escape(p.address) + r"(?!\w)"] + ([re.escape(p.option) + r"(?![\w-])"] if p.option else [])
        found += [(m.start(), p) for pat in pats for m in re.finditer(pat, unit)]
    return sorted(found, key=lambda t: t[0])


def _units(text: str):
    """Sentences of prose, lines of code blocks and tables: a stated range belongs to a control named there."""
    in_code = False
    prose = []
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code or line.startswith("|"):
            yield line
        else:
            prose.append(line)
    yield from re.split(r"(?<=[.;:])\s+(?=[A-Z`(])|\n\s*\n", "\n".join(prose))


def stated_values(text: str):
    """(Param, what, value) for each range ("0..2"), upper bound ("up to 4") or default ("default 0.5") stated
    beside a control's address or option. A range or bound belongs to the next control named after it in the
    same sentence (else the last one before it); a default to the last one before it (else the next)."""
    out = []
    for unit in _units(text):
        mentions = _mentions(unit)
        if not mentions:
            continue
        for kind, pattern, after_first in (("range", rf"(?<![\d.])({NUM})\.\.({NUM})(?![\d.])", True),
                                           ("up to", rf"\bup to ({NUM})\b", True),
                                           ("default", rf"\(default ({NUM})\b", False)):
            for m in re.finditer(pattern, unit):
                after = [p for pos, p in mentions if pos > m.start()]
                before = [p for pos, p in mentions if pos < m.start()]
                order = (after[:1] + before[-1:]) if after_first else (before[-1:] + after[:1])
                value = (float(m.group(1)), float(m.group(2))) if kind == "range" else float(m.group(1))
                out.append((order[0], kind, value))
    return out


def _shipped_meta() -> dict:
    import json

    card = json.loads((REPO / "transflower" / "default_model" / "transflower_live.model_card.json").read_text())
    return {p.model_key: card[p.model_key] for p in NUMBERS if p.model_key and p.model_key in card}


def mismatches(text: str) -> list[str]:
    shipped = _shipped_meta()
    bad = []
    for p, kind, value in stated_values(text):
        if p.kind != "number":
            continue
        if kind == "range" and value != (p.lo, p.hi):
            bad.append(f"{p.name}: {value[0]:g}..{value[1]:g}, the spec says {p.range_text}")
        elif kind == "up to" and value != p.hi:
            bad.append(f"{p.name}: up to {value:g}, the spec says {p.hi:g}")
        elif kind == "default" and value not in (p.default, shipped.get(p.model_key)):
            bad.append(f"{p.name}: default {value:g}, the spec (or the shipped model) says {p.default_doc}")
    return bad


@pytest.mark.parametrize("path", PROSE, ids=lambda p: p.name)
def test_docs_state_the_spec_ranges_and_defaults(path):
    assert mismatches(path.read_text()) == []


def test_the_docs_check_finds_what_it_must_and_fails_on_a_wrong_range():
    checked = {(p.name, kind, value) for path in PROSE for p, kind, value in stated_values(path.read_text())}
    for name, value in (("temperature", (0.0, 2.0)), ("style_strength", (0.0, 4.0)), ("correlation", (0.0, 0.95))):
        assert (name, "range", value) in checked  # the controller layout's faders, among others
    assert ("style_strength", "up to", 4.0) in checked and ("temperature", "default", 0.5) in checked
    wrong = ("A fader 0..2 sending `/transflower/temperature`, one 0..3 for `/transflower/style_strength`, "
             "`--temperature` (default 0.7).")
    assert mismatches(wrong) == ["style_strength: 0..3, the spec says 0..4",
                                 "temperature: default 0.7, the spec (or the shipped model) says the model's own, else 1"]


def test_control_md_midi_table_is_the_built_in_map():
    text = CONTROL_MD.read_text().split("## MIDI", 1)[1]
    cc = {int(n): (float(lo), float(hi)) for n, lo, hi in re.findall(rf"\| CC (\d+) [^|]*\| [a-z ]+ ({NUM})\.\.({NUM}) \|", text)}
    built_in = parse_midi_map(DEFAULT_MAP)
    assert cc == {n: (lo, hi) for n, (_, lo, hi) in built_in.cc.items()}

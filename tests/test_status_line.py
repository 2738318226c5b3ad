"""The live status line as people read it: 80 columns, redrawn in place on a terminal only, log records on
their own lines above it; the receivers' state and the one line that says what to start."""
from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest

from transflower.realtime.status_line import (STATUS_WIDTH, ReceiverWatch, StatusFacts, StatusLine, clock_text, count_text,
                                  status_text, style_label)

sys.path.insert(0, str(Path(__file__).resolve().parent))


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def screen(text: str) -> list[str]:
    """What a terminal shows for `text`: a carriage return goes back to column 0 and overwrites."""
    lines, cur, col = [], [], 0
    for ch in text:
        if ch == "\n":
            lines.append("".join(cur).rstrip())
            cur, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            if col < len(cur):
                cur[col] = ch
            else:
                cur.append(ch)
            col += 1
    if cur:
        lines.append("".join(cur).rstrip())
    return lines


REALISTIC = [
    StatusFacts(754.2, -18.3, 124.0, "cha-cha", 0.8, False, 0, 0, "sending"),
    StatusFacts(3723.0, -31.0, 96.0, "hip-hop", 0.2, True, 12, 340, "waiting for receiver", temperature=0.8),
    StatusFacts(61.0, -120.0, None, None, None, False, 3, 0, "waiting for 2 of 3 receivers", audio_lost_s=12.0),
    StatusFacts(5.0, -9.0, 200.0, "rumba", 1.0, False, 0, 0, "sending to 4", hold=True, temperature=1.0),
]
EXTREME = [
    StatusFacts(10 * 86400.0, -1e9, 1e9, "a-very-long-style-name-indeed", 1.0, True, 10**9, 10**12,
                "waiting for 4096 of 4096 receivers", audio_lost_s=1e7, hold=True, temperature=5.0),
    StatusFacts(0.0, float("nan"), float("inf"), "x" * 200, 0.0, True, 99999, 99999, "waiting for receiver"),
]


@pytest.mark.parametrize("facts", REALISTIC + EXTREME)
def test_the_line_fits_80_columns(facts):
    line = status_text(facts)
    assert len(line) <= STATUS_WIDTH and "\n" not in line
    assert line.startswith(clock_text(facts.elapsed))
    assert line.endswith(facts.receivers[:20]) or facts.receivers in line  # the receivers' state always stays


def test_realistic_values_show_every_fact():
    a, b, c, d = (status_text(f) for f in REALISTIC)
    assert a == "12:34  -18 dB 124 bpm  cha-cha  size 80%  on time  sending"
    assert all(w in b for w in ("1:02:03", "-31 dB", "hip-hop", "T 0.80", "break", "late 12 skip 340",
                                "waiting for receiver")), b
    assert "96 bpm" not in b and len(b) == 79  # the tempo went first, to fit
    b_no_control = status_text(StatusFacts(3723.0, -31.0, 96.0, "hip-hop", 0.2, True, 12, 340, "waiting for receiver"))
    assert b_no_control == "1:02:03  -31 dB 96 bpm  hip-hop  break  late 12 skip 340  waiting for receiver"
    assert "AUDIO LOST 12s" in c and "late 3 skip 0" in c and "size" not in c
    assert "HOLD" in d and "5 bpm" not in d and "200 bpm" in d
    # --time-base: the dancer's clock rate beside the tempo, dropped with it when the line is too long
    assert "124 bpm x1.25  cha-cha" in status_text(StatusFacts(754.0, -18.0, 124.0, "cha-cha", 0.8, pace=1.25))
    assert "x1.25" not in status_text(StatusFacts(3723.0, -31.0, 96.0, "hip-hop", 0.2, True, 12, 340, "waiting for receiver",
                                                  temperature=0.8, pace=1.25))
    # ... and during its count-in, "listening" instead of the rate
    listening = status_text(StatusFacts(5.0, -18.0, 124.0, "cha-cha", 0.2, pace=1.0, listening=True))
    assert "124 bpm listening  cha-cha" in listening and "x1.00" not in listening


def test_extreme_values_drop_the_least_important_first():
    line = status_text(EXTREME[0])
    assert "AUDIO LOST" in line and "HOLD" in line and "bpm" not in line
    assert "late 1.0M" in status_text(StatusFacts(0, -20, late=10**6, skipped=5))
    assert [count_text(n) for n in (0, 9999, 12345, 123456, 1234567, 10**9)] == ["0", "9999", "12.3k", "123k", "1.2M", "1000M"]
    assert status_text(EXTREME[0], width=40) == status_text(EXTREME[0], width=40)[:40]
    assert len(status_text(EXTREME[0], width=40)) <= 40


def test_verbose_appends_the_engine_figures_after_the_people_part():
    line = status_text(StatusFacts(1.0, -20.0, engine="60.0 fps  step p50 0.45 p99 1.30 ms"))
    people, engine = line.split("  | ")
    assert len(people) <= STATUS_WIDTH and engine.startswith("60.0 fps")


def test_style_label():
    assert style_label([], None) is None and style_label(["auto", "waltz"], None) is None
    assert style_label(["auto", "waltz"], [0.0, 1.0]) == "waltz"
    assert style_label(["auto", "waltz"], [0.3, 0.7]) == "~waltz"


def test_on_a_terminal_log_records_go_above_the_line_never_on_it(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    term = FakeTerminal()
    logger = logging.getLogger("test_status_line.terminal")
    logger.propagate = False
    handler = logging.StreamHandler(term)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        line = StatusLine(0.5, stream=term).attach_logging(logger)
        assert line.terminal and line.width == 79
        assert line.due(0.5) and not line.due(0.7) and line.due(1.0)
        line.show("0:01  -20 dB  on time  sending")
        logger.warning("something to say")
        line.show("0:02  -21 dB  on time  waiting for receiver" + "x" * 100)  # clipped: a wrapped line cannot be redrawn
        logger.info("and more")
        line.close()
        logger.info("after the show")
        assert logger.handlers == [handler]  # unwrapped again
    finally:
        logger.removeHandler(handler)
    shown = screen(term.getvalue())
    assert shown == ["something to say", "and more", "after the show"]  # the line was erased on close
    raw = term.getvalue().split("\n")
    for rec in ("something to say", "and more"):
        own = [r for r in raw if rec in r][0]
        assert screen(own) == [rec]  # the record overwrote the erased status line: nothing of it left on that line
    drawn = [seg for ln in raw for seg in ln.split("\r") if "dB" in seg]
    assert len(drawn) == 4 and all(len(seg) <= 79 for seg in drawn)  # 2 shown, 2 redrawn after a record


def test_not_a_terminal_plain_lines_now_and_then_or_none():
    out = io.StringIO()
    line = StatusLine(0.5, stream=out, plain_every=10.0)
    assert not line.terminal and line.attach_logging() is line
    for k in range(1, 61):  # 30 s of status updates
        if line.due(k * 0.5):
            line.show(f"t {k * 0.5:g}")
    assert out.getvalue().splitlines() == ["t 10", "t 20", "t 30"] and "\r" not in out.getvalue()
    quiet = StatusLine(0.0, stream=io.StringIO())
    assert not any(quiet.due(t) for t in range(100))


def test_receiver_watch_says_once_what_to_start_and_when_sends_go_through(caplog):
    from transflower.bridge.vmc import TargetStats

    t = TargetStats("127.0.0.1", 39539, ("127.0.0.1", 39539))
    w = ReceiverWatch([t], logging.getLogger("test.receivers"))
    caplog.set_level(logging.INFO, logger="test.receivers")
    assert w.update() == "sending"
    for _ in range(3):
        t.refused += 1
        t._count(111, "127.0.0.1:39539: ECONNREFUSED (ICMP)")
        assert w.update() == "waiting for receiver"
    hints = [r.getMessage() for r in caplog.records]
    assert len(hints) == 1 and "127.0.0.1:39539" in hints[0] and "VSeeFace" in hints[0] and "transflower view" in hints[0]
    t.last_error_time -= 5.0  # no error for a while: a receiver listens
    assert w.update() == "sending" and "sending" in caplog.records[-1].getMessage()
    t._count(111, "127.0.0.1:39539: ECONNREFUSED (ICMP)")
    assert w.update() == "waiting for receiver"
    assert len([r for r in caplog.records if "VSeeFace" in r.getMessage()]) == 1  # the long hint only once
    assert "no receiver at 127.0.0.1:39539 again" in caplog.records[-1].getMessage()


def test_a_crowd_without_receivers_is_one_line_not_sixteen(caplog):
    from transflower.bridge.vmc import TargetStats

    crowd = [TargetStats("127.0.0.1", 39539 + i, ("127.0.0.1", 39539 + i)) for i in range(16)]
    w = ReceiverWatch(crowd, logging.getLogger("test.crowd"))
    caplog.set_level(logging.INFO, logger="test.crowd")
    for t in crowd[:15]:
        t._count(111, f"127.0.0.1:{t.port}: ECONNREFUSED (ICMP)")
    crowd[15]._count(101, "127.0.0.1:39554: Network is unreachable")
    assert w.update() == "waiting for 16 of 16 receivers"
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith("nobody is listening at 127.0.0.1:39539, 127.0.0.1:39540, 127.0.0.1:39541 and 12 more; "
                          "cannot reach 127.0.0.1:39554 (Network is unreachable): start a VMC receiver there")


def test_a_live_run_without_a_receiver_on_a_terminal(tiny_onnx, monkeypatch):
    """No receiver: one warning naming the port and what to start, on its own line; the status line (<= 80
    columns) says `waiting for receiver`."""
    from test_live import live_args
    from test_vmc import free_udp_port

    from transflower.realtime.live import LiveSession

    monkeypatch.setenv("COLUMNS", "80")
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    root = logging.getLogger()
    handler = logging.StreamHandler(term)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    port = free_udp_port()
    try:
        args = live_args("--model", tiny_onnx, "--demo", "--duration", 2, "--fps", 20, "--osc", f"127.0.0.1:{port}",
                         "--status-interval", 0.2)
        assert LiveSession(args).run() == 0
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    out = term.getvalue()
    hint = [ln for ln in out.split("\n") if "nobody is listening" in ln]
    assert len(hint) == 1 and f"127.0.0.1:{port}" in hint[0]
    assert screen(hint[0]) == [screen(hint[0])[0]] and screen(hint[0])[0].startswith("WARNING transflower.live: nobody")
    drawn = [seg for ln in out.split("\n") for seg in ln.split("\r") if seg.strip() and "INFO" not in seg
             and "WARNING" not in seg and "{" not in seg]
    status = [d for d in drawn if "dB" in d]
    assert status and all(len(d) <= 80 for d in status)
    assert "waiting for receiver" in status[-1]


def test_the_summary_for_people_and_the_json_beside_the_run_log(tiny_onnx, tmp_path, capsys):
    """Nobody listening: the few lines say so; the JSON goes to --summary-json and beside the run's log file."""
    from test_live import live_args
    from test_vmc import free_udp_port

    from transflower.realtime.live import LiveSession

    args = live_args("--model", tiny_onnx, "--demo", "--duration", 1, "--fps", 20, "--osc", f"127.0.0.1:{free_udp_port()}",
                     "--status-interval", 0, "--summary-json", tmp_path / "out" / "s.json")
    args._log_path = tmp_path / "live-20270101-000000-1.log"  # what transflower.cli passes when it logs the run
    assert LiveSession(args).run() == 0
    out = capsys.readouterr().out
    beside = tmp_path / "live-20270101-000000-1.summary.json"
    s = json.loads((tmp_path / "out" / "s.json").read_text())
    assert json.loads(beside.read_text()) == s and s["udp_errors"] > 0
    assert "no receiver was listening" in out and f"summary JSON: {tmp_path / 'out' / 's.json'}, {beside}" in out
    # duration, frames, how far the avatar trails the music, the refused sends, where the JSON went
    assert len(out.strip().splitlines()) == 5 and "the avatar trails the music by" in out
    assert not list((tmp_path / "out").glob(".*tmp"))  # atomic: no leftovers


def test_an_unwritable_summary_json_is_one_clear_error(tmp_path):
    from transflower.realtime.live_summary import LiveSummary, write_summary_json
    from transflower.errors import UserError

    (tmp_path / "f").write_text("a file, not a folder")
    with pytest.raises(UserError, match="--summary-json .*cannot write it"):
        write_summary_json(LiveSummary(), tmp_path / "f" / "s.json")


def test_the_terminal_screenshot_replays_carriage_returns_and_wraps_at_the_width():
    """scripts/render_terminal.py (docs/evidence/terminal_80col.png): a redrawn status line shows its last
    state, a long log line wraps at the width, and --at stops at the first matching redraw."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("render_terminal", Path(__file__).parents[1] / "scripts" / "render_terminal.py")
    rt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rt)
    raw = "Script started on x\r\n" + "W" * 100 + "\r\n" + "0:00 a\r      \r0:01 bb\r       \r0:02 ccc"
    assert rt.replay(raw, 80, None) == ["W" * 80, "W" * 20, "0:02 ccc"]
    assert rt.replay(raw, 80, "0:01") == ["W" * 80, "W" * 20, "0:01 bb"]

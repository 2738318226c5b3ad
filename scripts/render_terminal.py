"""Render what an 80-column terminal shows during `transflower live` as a PNG (docs/evidence/terminal_80col.png).

    script -qfc "stty cols 80 rows 24; transflower live --demo --duration 12" term.log
    python scripts/render_terminal.py term.log docs/evidence/terminal_80col.png [--at 0:06]

The log is the terminal's byte stream (`script`); it is replayed as a terminal would show it: a carriage
return goes back to the start of the line (the status line is redrawn in place), a newline moves down,
lines wrap at the width. The screen is taken when the status line first shows `--at` (default: the end).
"""
from __future__ import annotations

import argparse
import re


def replay(raw: str, cols: int, stop_at: str | None) -> list[str]:
    raw = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    if raw.startswith("Script started"):  # script(1)'s own header line
        raw = raw[raw.find("\n") + 1:]
    screen, line, col = [], [" "] * cols, 0
    for ch in raw:
        if ch == "\r":
            col = 0
            if stop_at and "".join(line).startswith(stop_at):
                break
        elif ch == "\n":
            screen.append("".join(line).rstrip())
            line, col = [" "] * cols, 0
        else:
            if col >= cols:  # wrap
                screen.append("".join(line).rstrip())
                line, col = [" "] * cols, 0
            line[col] = ch
            col += 1
    screen.append("".join(line).rstrip())
    return [s for s in screen if not s.startswith(("Script started", "Script done"))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("log")
    p.add_argument("png")
    p.add_argument("--cols", type=int, default=80)
    p.add_argument("--at", default=None, help="take the screen when the status line first reads this (e.g. 0:06)")
    p.add_argument("--prompt", default=None, help="a command line to show above the output (`$ ...`)")
    a = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = replay(open(a.log, encoding="utf-8", errors="replace", newline="").read(), a.cols, a.at)
    while lines and not lines[-1]:
        lines.pop()
    if a.prompt:
        lines.insert(0, f"$ {a.prompt}")
    fig = plt.figure(figsize=(a.cols * 0.075 + 0.3, len(lines) * 0.16 + 0.3), dpi=110)
    fig.patch.set_facecolor("#1e1e1e")
    for i, text in enumerate(lines):
        fig.text(0.01, 1 - (i + 1) / (len(lines) + 1), text, family="DejaVu Sans Mono", size=8.2, color="#d4d4d4")
    fig.savefig(a.png, facecolor=fig.get_facecolor())
    print(f"{a.png}: {len(lines)} lines at {a.cols} columns")


if __name__ == "__main__":
    main()

"""Skeleton rendering for people: an MP4 of the dance with its music (ffmpeg), and a filmstrip PNG.

Joint positions come from forward kinematics (transflower.bvh); the camera follows the dancer's root
horizontally so a travelling dance stays in frame. Matplotlib draws each frame off-screen (Agg) and
its RGB buffer is piped to ffmpeg, which muxes the song in.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from transflower.errors import UserError

BONE_COLOR = "#1f6feb"
JOINT_COLOR = "#d1242f"


def _setup_axes(ax, half_width: float = 110.0):
    ax.set_xlim(-half_width, half_width)
    ax.set_ylim(-half_width, half_width)
    ax.set_zlim(0, 2 * half_width)
    ax.set_box_aspect((1, 1, 1))
    ax.set_axis_off()


def _draw(ax, pos: np.ndarray, parents: np.ndarray, centre: np.ndarray):
    """pos (J, 3) in our Y-up frame -> matplotlib's Z-up axes (x, z, y)."""
    p = pos - np.array([centre[0], 0.0, centre[2]])
    lines = []
    for j, par in enumerate(parents):
        if par >= 0:
            a, b = p[par], p[j]
            lines.append(ax.plot([a[0], b[0]], [a[2], b[2]], [a[1], b[1]], color=BONE_COLOR, lw=3)[0])
    lines.append(ax.scatter(p[:, 0], p[:, 2], p[:, 1], color=JOINT_COLOR, s=8))
    # a floor grid that moves with the dancer, so travel is visible
    g = np.arange(-100, 101, 50)
    for v in g:
        off_x, off_z = -(centre[0] % 50), -(centre[2] % 50)
        lines.append(ax.plot([v + off_x] * 2, [-100, 100], [0, 0], color="#cccccc", lw=0.6)[0])
        lines.append(ax.plot([-100, 100], [v + off_z] * 2, [0, 0], color="#cccccc", lw=0.6)[0])
    return lines


def render_video(positions: np.ndarray, parents: np.ndarray, fps: float, out_path, audio_path=None,
                 size=(480, 480), title: str = "", progress: bool = True) -> Path:
    """positions (T, J, 3) cm -> MP4 (H.264) with the song as its sound track."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise UserError("--video needs ffmpeg (Debian: apt-get install ffmpeg)")
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.stem}.tmp.mp4")
    w, h = size
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{w}x{h}", "-r", f"{fps}", "-i", "-"]
    if audio_path:
        cmd += ["-i", str(audio_path), "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    fig = plt.figure(figsize=(w / 100, h / 100), dpi=100)
    ax = fig.add_subplot(projection="3d")
    ax.view_init(elev=12, azim=-70)
    root = positions[:, 0]
    frames = range(len(positions))
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc="render", unit="frame")
    try:
        for t in frames:
            ax.cla()
            _setup_axes(ax)
            _draw(ax, positions[t], parents, root[t])
            if title:
                ax.set_title(f"{title}  {t / fps:6.2f} s", fontsize=9)
            fig.canvas.draw()
            proc.stdin.write(fig.canvas.buffer_rgba().tobytes())
        proc.stdin.close()
        if proc.wait() != 0:
            raise UserError(f"ffmpeg failed writing {out_path}")
    finally:
        plt.close(fig)
        if proc.poll() is None:
            proc.kill()
    tmp.replace(out_path)
    return out_path


def render_filmstrip(positions: np.ndarray, parents: np.ndarray, fps: float, out_png, n: int = 8,
                     title: str = "", rows: list[tuple[str, np.ndarray]] | None = None) -> Path:
    """A strip of n evenly spaced frames (one row per named sequence when `rows` is given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rows or [(title, positions)]
    fig = plt.figure(figsize=(2 * n, 2.2 * len(rows)))
    for r, (name, pos) in enumerate(rows):
        idx = np.linspace(0, len(pos) - 1, n).astype(int)
        for k, t in enumerate(idx):
            ax = fig.add_subplot(len(rows), n, r * n + k + 1, projection="3d")
            ax.view_init(elev=12, azim=-70)
            _setup_axes(ax)
            _draw(ax, pos[t], parents, pos[t, 0])
            ax.set_title(f"{name + '  ' if k == 0 and name else ''}{t / fps:.1f}s", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return Path(out_png)

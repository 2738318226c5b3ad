"""Where the dancers' poses go, each frame: one interface (`PoseSink`), one class per output.

`transflower live` and the library build a list of sinks and hand every frame's poses to each, in order:
`VmcSink` (one VMC stream per dancer, `transflower.bridge.vmc`), `PreviewSink` (the browser preview, dancer 0)
and `BvhRecorder` (`live --record FILE.bvh`: dancer 0's dance, written when the run ends). A new output
protocol is one new subclass: `send(poses)` once per frame (a `Pose` per dancer, views the caller reuses:
copy what you keep), and optionally `send_rest_pose`, `ease_to_neutral`, `close`. `targets` lists the
network targets whose send counters the live run watches (only VMC has any).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger("transflower.sinks")


class PoseSink:
    """One output of every frame's poses."""

    targets: tuple = ()

    def send(self, poses) -> None:
        raise NotImplementedError

    def send_rest_pose(self) -> None:
        """A standing pose now (the show is over)."""

    def ease_to_neutral(self, duration_s: float, fps: float) -> None:
        """Ease from the last pose into a standing pose over about duration_s (the show is over)."""

    def close(self) -> None:
        """Release what it holds (sockets, servers, files)."""


class VmcSink(PoseSink):
    """One VMC stream per dancer: dancer i's pose to targets[i] (a list of HOST:PORT each)."""

    def __init__(self, targets: list[list[str]], skeleton, bone_positions: str = "none", bone_map=None):
        from transflower.bridge.vmc import VmcSender

        self.senders = []
        try:
            for t in targets:
                self.senders.append(VmcSender(t, skeleton, bone_positions=bone_positions, bone_map=bone_map))
        except BaseException:
            self.close()
            raise

    @property
    def targets(self):
        return [t for s in self.senders for t in s.targets]

    def send(self, poses) -> None:
        for pose, sender in zip(poses, self.senders):
            sender.send(pose)

    def send_rest_pose(self) -> None:
        for s in self.senders:
            try:
                s.send_rest_pose()
            except Exception:  # noqa: BLE001  shutting down: a failing socket must not hide the summary
                pass

    def ease_to_neutral(self, duration_s: float, fps: float) -> None:
        """Every dancer at once (each sender paces its own ~duration_s)."""
        def ease(s):
            try:
                s.ease_to_neutral(duration_s, fps)
            except Exception:  # noqa: BLE001  shutting down: a failing socket must not hide the summary
                pass

        threads = [threading.Thread(target=ease, args=(s,), daemon=True) for s in self.senders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=duration_s + 2.0)

    def close(self) -> None:
        for s in self.senders:
            s.close()


class PreviewSink(PoseSink):
    """Dancer 0 to the browser preview (`transflower.bridge.preview.PreviewServer`, started and stopped by its
    owner). The preview is a convenience: a failure turns it off with one warning, the show goes on."""

    def __init__(self, server, skeleton):
        self.server, self.skeleton = server, skeleton

    def send(self, poses) -> None:
        if self.server is None:
            return
        try:
            self.server.push_pose(poses[0], self.skeleton)
        except Exception as e:  # noqa: BLE001
            log.warning("preview failed (%s); turning it off", e)
            self.server = None


class BvhRecorder(PoseSink):
    """Dancer 0's dance, kept as it is sent and written as a BVH file (atomically) when the run ends: the
    performance to edit, retarget or render later. Frames go into preallocated blocks of `block` frames (a
    new block now and then, not an allocation per frame); memory grows with the run, about 1 KB a frame."""

    def __init__(self, path, skeleton, fps: float, block: int = 1200):
        from transflower.errors import UserError

        self.path, self.skeleton, self.fps, self.block = Path(path), skeleton, float(fps), int(block)
        if self.path.suffix.lower() != ".bvh":
            raise UserError(f"--record {path}: expected a .bvh file name")
        if not self.path.parent.is_dir():
            raise UserError(f"--record {path}: the folder {self.path.parent} does not exist")
        self._blocks, self.frames = [], 0

    def send(self, poses) -> None:
        k = self.frames % self.block
        if k == 0:
            rots = np.asarray(poses[0].local_rotations)
            self._blocks.append((np.zeros((self.block, 3)), np.zeros((self.block,) + rots.shape)))
        root, rots = self._blocks[-1]
        np.copyto(root[k], poses[0].root_position)
        np.copyto(rots[k], poses[0].local_rotations)
        self.frames += 1

    def close(self) -> None:
        from transflower.bvh import BvhMotion, write_bvh

        if not self.frames:
            return
        n = self.frames
        root = np.concatenate([b[0] for b in self._blocks])[:n]
        rots = np.concatenate([b[1] for b in self._blocks])[:n]
        write_bvh(self.path, BvhMotion(self.skeleton, self.fps, root, rots))
        log.info("recorded %d frames (%.1f s) of dancer 0 to %s", n, n / self.fps, self.path)
        self._blocks, self.frames = [], 0

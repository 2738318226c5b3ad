"""The outputs behind one interface (transflower.bridge.sinks): VMC, the preview, a BVH recorder, and a sink
of one's own, each handed every frame's poses by the live loop."""
import json

import numpy as np
import pytest

from test_live import live_args
from test_vmc import free_udp_port

from transflower.bridge.sinks import BvhRecorder, PoseSink
from transflower.errors import UserError


class CountingSink(PoseSink):
    """A new output protocol in a few lines: what the live loop hands it."""

    def __init__(self):
        self.frames, self.closed, self.eased = [], False, False

    def send(self, poses) -> None:
        self.frames.append((poses[0].frame_index, poses[0].root_position.copy()))

    def ease_to_neutral(self, duration_s, fps) -> None:
        self.eased = True

    def close(self) -> None:
        self.closed = True


def test_live_hands_every_frame_to_every_sink_and_records_a_bvh(tiny_onnx, tmp_path):
    from transflower.bvh import read_bvh
    from transflower.realtime.live import LiveSession

    bvh = tmp_path / "show.bvh"
    args = live_args("--model", tiny_onnx, "--demo", "--duration", 2, "--fps", 20, "--osc", f"127.0.0.1:{free_udp_port()}",
                     "--status-interval", 0, "--record", bvh, "--summary-json", tmp_path / "s.json")
    session = LiveSession(args)
    mine = CountingSink()
    session.sinks.append(mine)
    assert session.run() == 0
    frames = json.loads((tmp_path / "s.json").read_text())["frames"]
    assert [f for f, _ in mine.frames] == list(range(frames)) and mine.closed and mine.eased
    motion = read_bvh(bvh)  # dancer 0's dance as sent, frame for frame
    assert motion.num_frames == frames and motion.fps == pytest.approx(20.0)
    np.testing.assert_allclose(motion.root_positions, np.stack([r for _, r in mine.frames]), atol=1e-3)


def test_a_recording_path_is_checked_before_the_show(tmp_path):
    with pytest.raises(UserError, match="expected a .bvh file name"):
        BvhRecorder(tmp_path / "show.txt", None, 20.0)
    with pytest.raises(UserError, match="does not exist"):
        BvhRecorder(tmp_path / "missing" / "show.bvh", None, 20.0)

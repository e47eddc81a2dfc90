"""Joint, bone and motion input streams (shared by the recognizer and the evaluator)."""

import pytest
import torch

from mdm.data.streams import input_streams, stream_name
from mdm.skeleton import load_skeleton

PARENTS = torch.tensor(load_skeleton("kinect_v1").parents)


def test_streams_are_joints_bones_and_frame_differences() -> None:
    x = torch.randn(2, 5, 20, 3)
    streams = input_streams(x, PARENTS, ("joint", "bone", "motion"))
    assert streams.shape == (2, 5, 20, 9)
    assert torch.equal(streams[..., :3], x)
    assert torch.equal(streams[:, :, 0, 3:6], torch.zeros(2, 5, 3))  # the root has no bone
    assert torch.allclose(streams[:, :, 4, 3:6], x[:, :, 4] - x[:, :, int(PARENTS[4])])
    assert torch.allclose(streams[:, :, 7, 3:6], x[:, :, 7] - x[:, :, 6])
    assert torch.allclose(streams[:, :4, :, 6:], x[:, 1:] - x[:, :-1]) and streams[:, 4, :, 6:].abs().max() == 0


def test_bone_and_motion_ignore_a_translation_and_a_ramp_moves_by_one() -> None:
    x = torch.randn(2, 16, 20, 3)
    streams = input_streams(x, PARENTS, ("joint", "bone", "motion"))
    translated = input_streams(x + torch.tensor([0.5, -2.0, 3.0]), PARENTS, ("bone", "motion"))
    assert torch.allclose(translated, streams[..., 3:], atol=1e-5)
    ramp = torch.arange(16, dtype=torch.float32)[None, :, None, None] * torch.ones(1, 1, 20, 3)
    motion = input_streams(ramp, PARENTS, ("motion",))
    assert torch.allclose(motion[:, :-1], torch.ones_like(motion[:, :-1]))
    assert torch.equal(motion[:, -1], torch.zeros_like(motion[:, -1]))


def test_unknown_stream_is_refused() -> None:
    with pytest.raises(ValueError, match="velocity"):
        input_streams(torch.zeros(1, 2, 20, 3), PARENTS, ("velocity",))


def test_bone_motion_is_the_frame_difference_of_bones_and_codes_name_streams() -> None:
    x = torch.randn(2, 6, 20, 3)
    bone, bone_motion = input_streams(x, PARENTS, ("bone", "bone_motion")).split(3, dim=-1)
    assert torch.allclose(bone_motion[:, :-1], bone[:, 1:] - bone[:, :-1])
    assert torch.equal(bone_motion[:, -1], torch.zeros_like(bone_motion[:, -1]))  # zero padding at the end
    assert torch.equal(bone_motion[:, :, 0], torch.zeros_like(bone_motion[:, :, 0]))  # the root has no bone
    assert [stream_name(code) for code in ("j", "b", "jm", "bm")] == ["joint", "bone", "motion", "bone_motion"]
    assert stream_name("bone") == "bone"
    with pytest.raises(ValueError, match="jm \\(motion\\)"):
        stream_name("jb")

"""Motion representations (positions, rot6d) and normalisation statistics."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from mdm.data.dataset import MotionDataset
from mdm.errors import ConfigError, DataFormatError
from mdm.kinematics import default_smpl_rest_offsets, forward_kinematics
from mdm.representation import (
    NormStats,
    PoseParams,
    PositionRepresentation,
    Rot6DRepresentation,
    rest_offsets_for,
)
from mdm.rotations import axis_angle_to_matrix, matrix_to_rotation_6d
from mdm.skeleton import load_skeleton

SMPL = load_skeleton("smpl_24")
KINECT = load_skeleton("kinect_v1")


def random_positions(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def random_pose_params(batch: int, frames: int, seed: int = 0) -> PoseParams:
    generator = torch.Generator().manual_seed(seed)
    rotations = axis_angle_to_matrix(torch.randn(batch, frames, 24, 3, generator=generator))
    translation = torch.randn(batch, frames, 3, generator=generator)
    return PoseParams(matrix_to_rotation_6d(rotations), translation)


def ground_shifted(positions: torch.Tensor, root: int, up_axis: int) -> torch.Tensor:
    """Positions moved so the first-frame root is at the horizontal origin (height kept)."""
    shift = positions[:, :1, root].clone()
    shift[..., up_axis] = 0.0
    return positions - shift[:, :, None]


def test_position_round_trip_and_layout():
    representation = PositionRepresentation(KINECT)
    positions = random_positions((3, 8, 20, 3)) + torch.tensor([5.0, 1.0, 2.0])
    features = representation.encode(positions)
    assert features.shape == (3, 8, 20, 3)
    assert representation.num_channels == 3 and representation.num_slots == 20 and representation.name == "positions"
    root = KINECT.root
    # Root channels: trajectory from the first frame on the ground plane, height absolute.
    torch.testing.assert_close(features[:, 0, root, [0, 2]], torch.zeros(3, 2))
    torch.testing.assert_close(features[:, :, root, 1], positions[:, :, root, 1])
    # Other joints relative to the root.
    torch.testing.assert_close(features[:, :, 5], positions[:, :, 5] - positions[:, :, root])
    decoded = representation.decode(features)
    torch.testing.assert_close(decoded, ground_shifted(positions, root, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(representation.encode(decoded), features, atol=1e-5, rtol=0)


def test_position_representation_uses_the_skeleton_up_axis():
    z_up = dataclasses.replace(SMPL, up_axis=2)
    positions = random_positions((2, 4, 24, 3), seed=1)
    features = PositionRepresentation(z_up).encode(positions)
    torch.testing.assert_close(features[:, 0, 0, :2], torch.zeros(2, 2))
    torch.testing.assert_close(features[:, :, 0, 2], positions[:, :, 0, 2])


def test_position_encode_dataset_handles_one_and_several_persons():
    representation = PositionRepresentation(KINECT)
    single = MotionDataset([random_positions((6, 20, 3)).numpy(), random_positions((4, 20, 3), 1).numpy()],
                           labels=[0, 1], class_names=["a", "b"], skeleton=KINECT)
    features = representation.encode_dataset(single)
    assert [f.shape for f in features] == [(6, 20, 3), (4, 20, 3)]
    torch.testing.assert_close(features[1], representation.encode(torch.as_tensor(single.clips[1])[None])[0])
    two = random_positions((5, 2, 20, 3), seed=2)
    multi = MotionDataset([two.numpy()], labels=[0], class_names=["a"], skeleton=KINECT)
    (encoded,) = representation.encode_dataset(multi)
    assert encoded.shape == (5, 2, 20, 3)
    torch.testing.assert_close(encoded[:, 1], representation.encode(two[:, 1][None])[0])


def test_rot6d_round_trip_layout_and_decode():
    offsets = default_smpl_rest_offsets()
    representation = Rot6DRepresentation(SMPL, offsets)
    params = random_pose_params(2, 7)
    features = representation.encode(params)
    assert features.shape == (2, 7, 25, 6)
    assert representation.num_slots == 25 and representation.num_channels == 6 and representation.name == "rot6d"
    torch.testing.assert_close(features[:, :, :24], params.rotations)
    torch.testing.assert_close(features[:, :, 24, 3:], torch.zeros(2, 7, 3))
    torch.testing.assert_close(features[:, :, 24, :3], ground_shifted(params.translation[:, :, None], 0, 1)[:, :, 0])
    # Matrices encode to the same features as their 6D.
    matrices = representation.to_params(features).rotations
    torch.testing.assert_close(representation.encode(PoseParams(matrices, params.translation)), features,
                               atol=1e-6, rtol=0)
    # Decoding = forward kinematics of the decoded parameters.
    decoded = representation.decode(features)
    expected = forward_kinematics(matrices, offsets, features[:, :, 24, :3], SMPL.parents)
    torch.testing.assert_close(decoded, expected)


def test_rot6d_decode_of_identity_is_rest_pose_plus_translation():
    offsets = default_smpl_rest_offsets()
    representation = Rot6DRepresentation(SMPL, offsets)
    translation = torch.tensor([[[0.0, 0.9, 0.0], [0.3, 1.0, -0.2]]])
    identity = matrix_to_rotation_6d(torch.eye(3)).expand(1, 2, 24, 6)
    positions = representation.decode(representation.encode(PoseParams(identity, translation)))
    rest = forward_kinematics(torch.eye(3).expand(24, 3, 3), offsets, torch.zeros(3), SMPL.parents)
    torch.testing.assert_close(positions, rest + translation[:, :, None], atol=1e-6, rtol=0)


def test_rot6d_root_rotation_turns_the_body():
    representation = Rot6DRepresentation(SMPL, default_smpl_rest_offsets())
    identity = torch.eye(3).expand(1, 1, 24, 3, 3).clone()
    identity[:, :, 0] = axis_angle_to_matrix(torch.tensor([0.0, math.pi, 0.0]))
    positions = representation.decode(representation.encode(PoseParams(identity, torch.zeros(1, 1, 3))))
    left_hand = SMPL.joint_names.index("left_hand")
    assert positions[0, 0, left_hand, 0] < -0.5  # facing backwards: the left hand is at -x


def test_rot6d_encode_dataset_and_refusals():
    representation = Rot6DRepresentation(SMPL, default_smpl_rest_offsets())
    params = random_pose_params(1, 5, seed=3)
    clip = representation.decode(representation.encode(params))[0].numpy()
    dataset = MotionDataset([clip], labels=[0], class_names=["a"], skeleton=SMPL,
                            rotations=[params.rotations[0].numpy()], translations=[params.translation[0].numpy()])
    (features,) = representation.encode_dataset(dataset)
    torch.testing.assert_close(features, representation.encode(params)[0])
    with pytest.raises(ConfigError, match="rotation data"):
        representation.encode_dataset(MotionDataset([clip], labels=[0], class_names=["a"], skeleton=SMPL))
    with pytest.raises(ConfigError, match="PoseParams"):
        representation.encode(torch.zeros(1, 5, 24, 3))
    with pytest.raises(ConfigError, match="joint positions"):
        PositionRepresentation(SMPL).encode(params)
    with pytest.raises(ValueError, match="rest_offsets"):
        Rot6DRepresentation(SMPL, torch.zeros(23, 3))
    with pytest.raises(ValueError, match="translation"):
        representation.encode(PoseParams(params.rotations, params.translation[:, :3]))
    with pytest.raises(ValueError, match="features"):
        representation.decode(torch.zeros(1, 5, 24, 6))
    with pytest.raises(ValueError, match="positions"):
        PositionRepresentation(SMPL).encode(torch.zeros(5, 24, 3))


def test_rest_offsets_for_each_source(tmp_path):
    torch.testing.assert_close(rest_offsets_for("default", SMPL), default_smpl_rest_offsets())
    # Data generated with scaled default offsets yields the scaled offsets back.
    generator = torch.Generator().manual_seed(4)
    rotations = axis_angle_to_matrix(torch.randn(30, 24, 3, generator=generator))
    clip = forward_kinematics(rotations, default_smpl_rest_offsets() * 0.9, torch.zeros(30, 3), SMPL.parents)
    dataset = MotionDataset([clip.numpy()], labels=[0], class_names=["a"], skeleton=SMPL)
    torch.testing.assert_close(rest_offsets_for("data", SMPL, dataset=dataset), default_smpl_rest_offsets() * 0.9,
                               atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="smpl_dir"):
        rest_offsets_for("smpl", SMPL)
    with pytest.raises(ConfigError, match="unknown rest offset source"):
        rest_offsets_for("guess", SMPL)
    with pytest.raises(ConfigError, match="24-joint"):
        rest_offsets_for("default", KINECT)


def test_norm_stats_fit_normalize_round_trip():
    generator = torch.Generator().manual_seed(5)
    clips = [torch.randn(t, 25, 6, generator=generator) * 3.0 + 1.0 for t in (10, 20, 7)]
    clips[0][..., 24, 3:] = 0.0
    clips[1][..., 24, 3:] = 0.0
    clips[2][..., 24, 3:] = 0.0
    stats = NormStats.fit(clips, eps=1e-4)
    frames = torch.cat(clips)
    torch.testing.assert_close(stats.mean, frames.mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(stats.std[:24], frames[:, :24].std(0, unbiased=False), atol=1e-5, rtol=0)
    torch.testing.assert_close(stats.std[24, 3:], torch.full((3,), 1e-4))  # constant channels floored
    normalized = stats.normalize(frames)
    torch.testing.assert_close(normalized[:, :24].mean(0), torch.zeros(24, 6), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalized[:, :24].std(0, unbiased=False), torch.ones(24, 6), atol=1e-4, rtol=0)
    torch.testing.assert_close(normalized[:, 24, 3:], torch.zeros(37, 3))
    torch.testing.assert_close(stats.denormalize(normalized), frames, atol=1e-5, rtol=0)
    # Batched features [B, T, J, C] broadcast; a numpy clip list fits the same.
    torch.testing.assert_close(stats.normalize(frames[None]), normalized[None])
    torch.testing.assert_close(NormStats.fit([c.numpy() for c in clips], eps=1e-4).mean, stats.mean)


def test_norm_stats_dict_and_file_round_trip(tmp_path):
    stats = NormStats(torch.randn(20, 3), torch.rand(20, 3) + 0.5)
    again = NormStats.from_dict(stats.to_dict(prefix="norm."), prefix="norm.")
    torch.testing.assert_close(again.mean, stats.mean)
    torch.testing.assert_close(again.std, stats.std)
    path = tmp_path / "norm.safetensors"
    stats.save(path)
    loaded = NormStats.load(path)
    assert torch.equal(loaded.mean, stats.mean) and torch.equal(loaded.std, stats.std)


def test_norm_stats_refusals(tmp_path):
    with pytest.raises(ValueError, match="no clips"):
        NormStats.fit([])
    with pytest.raises(ValueError, match="last two dimensions"):
        NormStats.fit([torch.zeros(3, 20, 3), torch.zeros(3, 21, 3)])
    with pytest.raises(ValueError, match="positive"):
        NormStats(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(KeyError, match="std"):
        NormStats.from_dict({"mean": torch.zeros(2, 3)})
    with pytest.raises(DataFormatError, match="no such"):
        NormStats.load(tmp_path / "absent.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(np.arange(3, dtype=np.uint8).tobytes())
    with pytest.raises(DataFormatError, match="garbage.safetensors"):
        NormStats.load(garbage)

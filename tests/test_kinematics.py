"""Forward kinematics and rest offsets (estimated, shipped default, from SMPL model files)."""

import math
import pickle

import numpy as np
import pytest
import torch

from mdm.errors import UserError
from mdm.kinematics import (
    default_smpl_rest_directions,
    default_smpl_rest_offsets,
    depth_levels,
    estimate_rest_offsets,
    forward_kinematics,
    smpl_rest_offsets_from_model,
)
from mdm.rotations import axis_angle_to_matrix
from mdm.skeleton import load_skeleton

SMPL = load_skeleton("smpl_24")


def random_local_rotations(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return axis_angle_to_matrix(torch.randn(shape + (3,), generator=generator, dtype=torch.float64))


def test_identity_rotations_give_cumulative_offsets():
    offsets = default_smpl_rest_offsets().double()
    translation = torch.tensor([0.5, 1.0, -2.0], dtype=torch.float64)
    identity = torch.eye(3, dtype=torch.float64).expand(24, 3, 3)
    positions = forward_kinematics(identity, offsets, translation, SMPL.parents)
    for joint in range(24):
        expected = translation.clone()
        node = joint
        while node != -1:
            expected += offsets[node]
            node = SMPL.parents[node]
        torch.testing.assert_close(positions[joint], expected)


def test_hand_computed_chain():
    parents = [-1, 0, 1]
    offsets = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    quarter_z = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    local = torch.stack([quarter_z, quarter_z, torch.eye(3)])
    translation = torch.tensor([10.0, 0.0, 0.0])
    positions = forward_kinematics(local, offsets, translation, parents)
    # Root at the translation; joint 1 = root + Rz(90) (1, 0, 0); joint 2 = joint 1 + Rz(180) (2, 0, 0).
    expected = torch.tensor([[10.0, 0.0, 0.0], [10.0, 1.0, 0.0], [8.0, 1.0, 0.0]])
    torch.testing.assert_close(positions, expected, atol=1e-6, rtol=0)


def test_rotating_the_root_rotates_all_joints_about_it():
    local = random_local_rotations((5, 24))
    offsets = default_smpl_rest_offsets().double()
    translation = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    positions = forward_kinematics(local, offsets, translation, SMPL.parents)
    turn = axis_angle_to_matrix(torch.nn.functional.normalize(torch.tensor([0.3, -1.0, 0.2], dtype=torch.float64), dim=0) * 1.1)
    turned_local = local.clone()
    turned_local[:, 0] = turn @ local[:, 0]
    turned = forward_kinematics(turned_local, offsets, translation, SMPL.parents)
    expected = translation[:, None] + (positions - translation[:, None]) @ turn.T
    torch.testing.assert_close(turned, expected)


def test_bone_lengths_are_the_offset_lengths_and_batches_broadcast():
    local = random_local_rotations((2, 7, 24), seed=2)
    offsets = default_smpl_rest_offsets().double()
    translation = torch.zeros(2, 7, 3, dtype=torch.float64)
    positions = forward_kinematics(local, offsets, translation, SMPL.parents)
    assert positions.shape == (2, 7, 24, 3)
    child, parent = np.array(SMPL.bones)[:, 1], np.array(SMPL.bones)[:, 0]
    lengths = torch.linalg.vector_norm(positions[..., child, :] - positions[..., parent, :], dim=-1)
    torch.testing.assert_close(lengths, torch.linalg.vector_norm(offsets[child], dim=-1).expand(2, 7, -1))
    # Per-item offsets give the same result as shared ones, and each clip matches a solo call.
    per_item = forward_kinematics(local, offsets.expand(2, 7, 24, 3), translation, SMPL.parents)
    torch.testing.assert_close(per_item, positions)
    torch.testing.assert_close(forward_kinematics(local[1], offsets, translation[1], SMPL.parents), positions[1])


def test_root_need_not_be_joint_zero():
    parents = [1, -1, 1]
    offsets = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    half_x = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0]))
    local = torch.stack([torch.eye(3), half_x, torch.eye(3)])
    positions = forward_kinematics(local, offsets, torch.zeros(3), parents)
    torch.testing.assert_close(positions, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
                               atol=1e-6, rtol=0)
    assert depth_levels(parents) == [[1], [0, 2]]


def test_gradients_flow_to_rotations_and_offsets():
    axis_angle = torch.randn(3, 24, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    axis_angle.requires_grad_(True)
    offsets = default_smpl_rest_offsets().double().requires_grad_(True)
    positions = forward_kinematics(axis_angle_to_matrix(axis_angle), offsets, torch.zeros(3, 3, dtype=torch.float64),
                                   SMPL.parents)
    positions.square().sum().backward()
    assert torch.isfinite(axis_angle.grad).all() and axis_angle.grad.abs().sum() > 0
    assert torch.isfinite(offsets.grad).all() and offsets.grad[1:].abs().sum() > 0


def test_forward_kinematics_refuses_bad_shapes():
    offsets = default_smpl_rest_offsets()
    with pytest.raises(ValueError, match="local_rotations"):
        forward_kinematics(torch.eye(3).expand(23, 3, 3), offsets, torch.zeros(3), SMPL.parents)
    with pytest.raises(ValueError, match="rest_offsets"):
        forward_kinematics(torch.eye(3).expand(24, 3, 3), offsets[:, :2], torch.zeros(3), SMPL.parents)
    with pytest.raises(ValueError, match="root_translation"):
        forward_kinematics(torch.eye(3).expand(2, 24, 3, 3), offsets, torch.zeros(3), SMPL.parents)
    with pytest.raises(ValueError, match="parents"):
        forward_kinematics(torch.eye(3).expand(2, 3, 3), torch.zeros(2, 3), torch.zeros(3), [-1, -1])


def test_estimate_rest_offsets_recovers_known_offsets():
    true_offsets = default_smpl_rest_offsets().double() * 1.1
    clips = [
        forward_kinematics(random_local_rotations((t, 24), seed=t), true_offsets,
                           torch.randn(t, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(t)),
                           SMPL.parents)
        for t in (5, 9)
    ]
    directions = default_smpl_rest_directions()
    estimated = estimate_rest_offsets(clips, SMPL.parents, directions)
    assert estimated.dtype == torch.float32 and estimated.shape == (24, 3)
    torch.testing.assert_close(estimated, true_offsets.float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(estimate_rest_offsets(torch.cat(clips).numpy(), SMPL.parents, directions), estimated)


def test_estimate_uses_the_median_length():
    parents = [-1, 0]
    lengths = torch.tensor([1.0, 2.0, 100.0])  # one outlier frame
    joints = torch.zeros(3, 2, 3)
    joints[:, 1, 0] = lengths
    offsets = estimate_rest_offsets(joints, parents, torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 5.0]]))
    torch.testing.assert_close(offsets, torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]))


def test_estimate_refuses_bad_input():
    directions = default_smpl_rest_directions()
    with pytest.raises(ValueError, match="joints"):
        estimate_rest_offsets(torch.zeros(4, 23, 3), SMPL.parents, directions)
    with pytest.raises(ValueError, match="no clips"):
        estimate_rest_offsets([], SMPL.parents, directions)
    with pytest.raises(ValueError, match="rest_directions"):
        estimate_rest_offsets(torch.zeros(4, 24, 3), SMPL.parents, directions[:23])
    with pytest.raises(ValueError, match="non-zero direction"):
        estimate_rest_offsets(torch.zeros(4, 24, 3), SMPL.parents, torch.zeros(24, 3))


def test_default_offsets_are_mirror_symmetric_and_human_sized():
    offsets = default_smpl_rest_offsets()
    for left, right in SMPL.mirror_pairs:
        torch.testing.assert_close(offsets[left] * torch.tensor([-1.0, 1.0, 1.0]), offsets[right])
    positions = forward_kinematics(torch.eye(3).expand(24, 3, 3), offsets, torch.zeros(3), SMPL.parents)
    height = positions[:, 1].max() - positions[:, 1].min()  # ankle joint to head joint
    assert 1.3 < height < 1.8
    torch.testing.assert_close(torch.linalg.vector_norm(default_smpl_rest_directions()[1:], dim=-1), torch.ones(23))


def write_fake_smpl_model(path, rest_joints: np.ndarray) -> None:
    """A tiny model file in the SMPL pickle layout: one vertex per joint, identity regressor."""
    num_joints = len(rest_joints)
    kintree = np.array([[4294967295] + [max(p, 0) for p in SMPL.parents[1:]], list(range(num_joints))], dtype=np.int64)
    model = {
        "v_template": rest_joints,
        "shapedirs": np.zeros((num_joints, 3, 10)),
        "posedirs": np.zeros((num_joints, 3, 207)),
        "J_regressor": np.eye(num_joints),
        "kintree_table": kintree,
        "weights": np.eye(num_joints),
        "f": np.array([[0, 1, 2]], dtype=np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(model))


def test_smpl_rest_offsets_from_a_model_file(tmp_path):
    rest_joints = np.random.default_rng(0).normal(size=(24, 3))
    write_fake_smpl_model(tmp_path / "smpl" / "SMPL_FEMALE.pkl", rest_joints)
    offsets = smpl_rest_offsets_from_model(tmp_path, gender="female")
    expected = np.zeros((24, 3))
    expected[1:] = rest_joints[1:] - rest_joints[list(SMPL.parents[1:])]
    np.testing.assert_allclose(offsets.numpy(), expected, atol=1e-6)
    # Identity FK with these offsets puts every joint at its rest position relative to the pelvis.
    positions = forward_kinematics(torch.eye(3).expand(24, 3, 3), offsets, torch.zeros(3), SMPL.parents)
    np.testing.assert_allclose(positions.numpy(), rest_joints - rest_joints[0], atol=1e-5)


def test_missing_smpl_files_name_where_to_put_them(tmp_path):
    with pytest.raises(UserError, match=r"SMPL_NEUTRAL\.pkl not found.*smpl.is.tue.mpg.de"):
        smpl_rest_offsets_from_model(tmp_path)
    with pytest.raises(UserError, match="gender"):
        smpl_rest_offsets_from_model(tmp_path, gender="other")

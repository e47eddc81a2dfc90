"""Skeleton definitions: built-in trees, inferred mirror pairs and feet, refusals."""

import numpy as np
import pytest

from mdm.errors import ConfigError
from mdm.skeleton import Skeleton, available_skeletons, check_parents, load_skeleton


@pytest.mark.parametrize(("name", "num_joints", "num_pairs"), [("kinect_v1", 20, 8), ("kinect_v2", 25, 10), ("smpl_24", 24, 9)])
def test_builtin_skeletons_are_trees_with_symmetric_sides(name: str, num_joints: int, num_pairs: int) -> None:
    skeleton = load_skeleton(name)
    assert skeleton.num_joints == num_joints
    assert len(skeleton.bones) == num_joints - 1
    assert len(skeleton.mirror_pairs) == num_pairs
    for left, right in skeleton.mirror_pairs:
        assert "left" in skeleton.joint_names[left] and "right" in skeleton.joint_names[right]
        assert skeleton.joint_names[left].replace("left", "right") == skeleton.joint_names[right]
    perm = skeleton.mirror_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(num_joints))
    assert len(skeleton.foot_joints) == 4
    order = skeleton.topological_order
    position = {joint: i for i, joint in enumerate(order)}
    assert all(position[parent] < position[child] for parent, child in skeleton.bones)


def test_kinect_v1_matches_nw_ucla_joint_order() -> None:
    skeleton = load_skeleton("kinect_v1")
    assert skeleton.joint_names[0] == "hip_center" and skeleton.joint_names[3] == "head"
    assert skeleton.parents[7] == 6 and skeleton.parents[12] == 0 and skeleton.parents[16] == 0
    adjacency = skeleton.adjacency
    assert adjacency.shape == (20, 20) and np.allclose(adjacency, adjacency.T) and adjacency.sum() == 2 * 19


def test_from_parents_infers_pairs_and_feet_from_names() -> None:
    skeleton = Skeleton.from_parents([-1, 0, 0, 1, 2], ["root", "LeftHip", "RightHip", "LeftFoot", "RightFoot"])
    assert skeleton.mirror_pairs == ((1, 2), (3, 4))
    assert skeleton.foot_joints == (3, 4)
    unnamed = Skeleton.from_parents([-1, 0, 1])
    assert unnamed.joint_names == ("joint_0", "joint_1", "joint_2") and unnamed.mirror_pairs == ()


@pytest.mark.parametrize(
    ("parents", "message"),
    [([-1, 0, 5], "out of range"), ([-1, -1, 0], "exactly one root"), ([-1, 2, 1], "cycle"), ([], "no joints")],
)
def test_bad_trees_are_refused(parents: list[int], message: str) -> None:
    assert message in check_parents(np.array(parents, dtype=np.int64))
    with pytest.raises(ConfigError, match=message):
        Skeleton.from_parents(parents)


def test_unknown_skeleton_names_the_builtins() -> None:
    assert {"kinect_v1", "kinect_v2", "smpl_24"} <= set(available_skeletons())
    with pytest.raises(ConfigError, match="kinect_v1"):
        load_skeleton("no_such_skeleton")

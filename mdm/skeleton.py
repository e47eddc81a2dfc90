"""Skeleton definitions: joint names, the kinematic tree, bones, mirror pairs and feet.

Built-in skeletons live as data in ``assets/skeletons/<name>.yaml``; any other skeleton
can be built from a parents array (as stored in a motion archive) with
:meth:`Skeleton.from_parents`, so a dataset with its own joint order needs no code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import yaml

from mdm import ASSETS_DIR
from mdm.errors import ConfigError

SKELETONS_DIR = ASSETS_DIR / "skeletons"
_FOOT_WORDS = ("foot", "ankle", "toe", "heel")


def check_parents(parents: np.ndarray) -> str | None:
    """Return what is wrong with a parents array, or None if it is a valid tree.

    Args:
        parents: int ``[J]``, parent joint index, -1 for the root.
    """
    parents = np.asarray(parents)
    num_joints = len(parents)
    if num_joints == 0:
        return "the skeleton has no joints"
    if np.any((parents < -1) | (parents >= num_joints)):
        bad = int(np.flatnonzero((parents < -1) | (parents >= num_joints))[0])
        return f"parent index {int(parents[bad])} of joint {bad} is out of range [-1, {num_joints})"
    roots = np.flatnonzero(parents == -1)
    if len(roots) != 1:
        return f"expected exactly one root (parent -1), found {len(roots)}"
    for joint in range(num_joints):
        seen = 0
        node = joint
        while node != -1:
            node = int(parents[node])
            seen += 1
            if seen > num_joints:
                return f"the parents contain a cycle through joint {joint}"
    return None


def _mirror_name(name: str) -> str | None:
    """The name of the joint on the other side (``hand_left`` -> ``hand_right``), if any."""
    for left, right in (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT")):
        if left in name:
            return name.replace(left, right)
        if right in name:
            return name.replace(right, left)
    return None


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree of joints.

    Attributes:
        name: identifier, e.g. ``kinect_v1``.
        joint_names: one name per joint, ``J`` in all.
        parents: parent index of each joint, -1 for the single root.
        mirror_pairs: ``(left, right)`` joint index pairs swapped by left/right mirroring.
        foot_joints: indices of joints that touch the ground (for foot-contact losses).
        up_axis: coordinate axis pointing up (1 = y for Kinect and SMPL).
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    mirror_pairs: tuple[tuple[int, int], ...] = ()
    foot_joints: tuple[int, ...] = ()
    up_axis: int = 1

    def __post_init__(self) -> None:
        if len(self.joint_names) != len(self.parents):
            raise ConfigError(
                f"skeleton {self.name}: {len(self.joint_names)} joint names for {len(self.parents)} parents"
            )
        problem = check_parents(np.asarray(self.parents))
        if problem:
            raise ConfigError(f"skeleton {self.name}: {problem}")

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """``(parent, child)`` pairs, one per non-root joint, in joint order."""
        return tuple((parent, child) for child, parent in enumerate(self.parents) if parent >= 0)

    @cached_property
    def topological_order(self) -> tuple[int, ...]:
        """Joint indices ordered so that every parent comes before its children."""
        depth = [0] * self.num_joints
        for joint in range(self.num_joints):
            node = joint
            while self.parents[node] != -1:
                node = self.parents[node]
                depth[joint] += 1
        order = sorted(range(self.num_joints), key=lambda j: (depth[j], j))
        return tuple(order)

    @cached_property
    def mirror_permutation(self) -> np.ndarray:
        """int64 ``[J]``: joint ``j`` of a mirrored body takes joint ``perm[j]`` of the original."""
        perm = np.arange(self.num_joints)
        for left, right in self.mirror_pairs:
            perm[left], perm[right] = right, left
        return perm

    @cached_property
    def adjacency(self) -> np.ndarray:
        """float32 ``[J, J]`` symmetric bone adjacency without self loops."""
        adj = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        for parent, child in self.bones:
            adj[parent, child] = adj[child, parent] = 1.0
        return adj

    @classmethod
    def from_parents(
        cls,
        parents: np.ndarray | list[int],
        joint_names: list[str] | None = None,
        name: str = "custom",
        up_axis: int = 1,
    ) -> Skeleton:
        """Build a skeleton from a parents array, e.g. an archive's ``parents``/``joint_names``.

        Mirror pairs are inferred from names containing left/right; feet from names with
        foot, ankle, toe or heel. Without names, joints are called ``joint_0`` ... and
        neither is inferred.
        """
        parents_list = [int(p) for p in np.asarray(parents).reshape(-1)]
        names = list(joint_names) if joint_names is not None else [f"joint_{i}" for i in range(len(parents_list))]
        index = {n: i for i, n in enumerate(names)}
        pairs = []
        for i, joint_name in enumerate(names):
            other = index.get(_mirror_name(joint_name) or "")
            if other is not None and other != i and "left" in joint_name.lower():
                pairs.append((i, other))
        feet = tuple(i for i, n in enumerate(names) if any(w in n.lower() for w in _FOOT_WORDS))
        return cls(
            name=name,
            joint_names=tuple(names),
            parents=tuple(parents_list),
            mirror_pairs=tuple(pairs),
            foot_joints=feet,
            up_axis=up_axis,
        )


def available_skeletons() -> list[str]:
    """Names of the built-in skeletons in ``assets/skeletons`` (the files with a joint list)."""
    return sorted(path.stem for path in SKELETONS_DIR.glob("*.yaml") if "joints" in yaml.safe_load(path.read_text()))


def load_skeleton(name: str) -> Skeleton:
    """Load a built-in skeleton (``kinect_v1``, ``kinect_v2``, ``smpl_24``, ...; :func:`available_skeletons`)."""
    path = SKELETONS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown skeleton {name!r}; built-in skeletons: {', '.join(available_skeletons())}")
    spec = yaml.safe_load(path.read_text())
    names = [joint["name"] for joint in spec["joints"]]
    index = {n: i for i, n in enumerate(names)}
    parents = [-1 if joint["parent"] is None else index[joint["parent"]] for joint in spec["joints"]]
    inferred = Skeleton.from_parents(parents, names, name=spec["name"], up_axis=int(spec.get("up_axis", 1)))
    feet = tuple(index[n] for n in spec.get("feet", [])) or inferred.foot_joints
    return Skeleton(
        name=inferred.name,
        joint_names=inferred.joint_names,
        parents=inferred.parents,
        mirror_pairs=inferred.mirror_pairs,
        foot_joints=feet,
        up_axis=inferred.up_axis,
    )

"""BVH export of joint-position clips by inverse kinematics, deterministic.

The rest pose is the clip's first frame: each joint's BVH ``OFFSET`` is its bone in that frame,
scaled to the bone's mean length over the clip. Each frame then gets per-joint rotations that
turn the rest bones onto the frame's bones:

* a joint with two or more children (the hips, the chest) rotates by the least-squares rotation
  (Kabsch) taking its children's rest bones onto their current directions, which fixes the twist
  too (the left-right line of the hips and of the shoulders);
* a joint with one child takes the smallest rotation that turns its bone, as carried by its
  parent's rotation, onto the current direction (the twist about a bone, which positions do not
  show, stays that of the parent);
* a leaf follows its parent.

Forward kinematics of the written file gives back every bone's direction (exactly, up to float
rounding) and the bones' mean lengths. Rotations are written as ``Zrotation Xrotation Yrotation``
Euler angles in degrees (scipy's intrinsic ``ZXY``), the root also with its position.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mdm.skeleton import Skeleton

EULER_ORDER = "ZXY"


def _kabsch(rest: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotations ``[T, 3, 3]`` best taking vectors ``rest`` ``[T, K, 3]`` onto ``current`` ``[T, K, 3]``."""
    covariance = np.einsum("tki,tkj->tij", current, rest)
    u, _, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt))
    correction = np.ones((len(sign), 3))
    correction[:, 2] = sign
    return (u * correction[:, None, :]) @ vt


def _smallest_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotations ``[T, 3, 3]`` turning unit vectors ``source`` ``[T, 3]`` onto ``target`` ``[T, 3]`` by the
    smallest angle (about a perpendicular axis for opposite vectors)."""
    axis = np.cross(source, target)
    sine = np.linalg.norm(axis, axis=-1)
    cosine = np.clip(np.sum(source * target, axis=-1), -1.0, 1.0)
    angle = np.arctan2(sine, cosine)
    opposite = sine < 1e-9
    fallback = np.cross(source, np.eye(3)[np.argmin(np.abs(source), axis=-1)])
    axis = np.where(opposite[:, None], fallback, axis)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    return Rotation.from_rotvec(axis * angle[:, None]).as_matrix()


@dataclass
class BVHPose:
    """What a BVH file of a clip holds: its joints (parents before children), rest offsets and rotations.

    Attributes:
        names: ``J'`` joint names: the skeleton's, plus a zero-length ``<joint>_to_<child>`` joint between a
            joint of several children and each child.
        parents: ``J'`` parent indices into ``names`` (-1 for the root).
        offsets: float64 ``[J', 3]`` rest offsets from the parent.
        rotations: float64 ``[T, J', 3, 3]`` local rotations.
        root_positions: float64 ``[T, 3]`` the root joint's position.
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    rotations: np.ndarray
    root_positions: np.ndarray


def positions_to_rotations(positions: np.ndarray, skeleton: Skeleton) -> BVHPose:
    """The BVH pose reproducing the bone directions of ``positions`` ``[T, J, 3]`` (module docstring)."""
    positions = np.asarray(positions, dtype=np.float64)
    parents = list(skeleton.parents)
    frames = len(positions)
    bones = positions - positions[:, [max(p, 0) for p in parents]]
    bones[:, skeleton.root] = 0.0
    lengths = np.linalg.norm(bones, axis=-1).mean(0)
    rest_directions = bones[0] / np.maximum(np.linalg.norm(bones[0], axis=-1, keepdims=True), 1e-12)
    offsets = rest_directions * lengths[:, None]
    directions = bones / np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), 1e-12)
    children = {j: [c for c, p in enumerate(parents) if p == j] for j in range(len(parents))}
    identity = np.broadcast_to(np.eye(3), (frames, 3, 3))
    joint_rotation: dict[int, np.ndarray] = {}
    carrier: dict[int, np.ndarray] = {}  # the global rotation that carries each joint's bone
    branch: dict[int, np.ndarray] = {}  # global rotation of the zero-length joint before a child of a branching joint
    for joint in skeleton.topological_order:
        incoming = identity if parents[joint] < 0 else carrier[joint]
        kids = children[joint]
        if len(kids) >= 2:
            rotation = _kabsch(np.broadcast_to(offsets[kids], (frames, len(kids), 3)), bones[:, kids])
            for kid in kids:
                carried = np.einsum("tij,j->ti", rotation, rest_directions[kid])
                branch[kid] = _smallest_rotation(carried, directions[:, kid]) @ rotation
                carrier[kid] = branch[kid]
        elif len(kids) == 1:
            carried = np.einsum("tij,j->ti", incoming, rest_directions[kids[0]])
            rotation = _smallest_rotation(carried, directions[:, kids[0]]) @ incoming
            carrier[kids[0]] = rotation
        else:
            rotation = incoming
        joint_rotation[joint] = rotation
    names, bvh_parents, bvh_offsets, globals_ = [], [], [], []
    index_of: dict[int, int] = {}

    def add(name: str, parent: int, offset: np.ndarray, rotation: np.ndarray) -> int:
        names.append(name)
        bvh_parents.append(parent)
        bvh_offsets.append(offset)
        globals_.append(rotation)
        return len(names) - 1

    def visit(joint: int, parent_index: int) -> None:
        if joint in branch:
            parent_joint = parents[joint]
            parent_index = add(f"{skeleton.joint_names[parent_joint]}_to_{skeleton.joint_names[joint]}", parent_index,
                               np.zeros(3), branch[joint])
        offset = np.zeros(3) if parents[joint] < 0 else offsets[joint]
        index_of[joint] = add(skeleton.joint_names[joint], parent_index, offset, joint_rotation[joint])
        for kid in children[joint]:
            visit(kid, index_of[joint])

    visit(skeleton.root, -1)
    global_rotations = np.stack(globals_, axis=1)
    local = global_rotations.copy()
    for index, parent in enumerate(bvh_parents):
        if parent >= 0:
            local[:, index] = np.swapaxes(global_rotations[:, parent], -1, -2) @ global_rotations[:, index]
    return BVHPose(names, bvh_parents, np.asarray(bvh_offsets), local, positions[:, skeleton.root])


def write_bvh(path: str | Path, positions: np.ndarray, skeleton: Skeleton, fps: float) -> Path:
    """Write a joint-position clip ``[T, J, 3]`` as BVH (units as given), written whole or not at all."""
    pose = positions_to_rotations(positions, skeleton)
    children = {j: [c for c, p in enumerate(pose.parents) if p == j] for j in range(len(pose.names))}
    lines = ["HIERARCHY"]

    def block(joint: int, depth: int) -> None:
        pad = "  " * depth
        offset = pose.offsets[joint]
        lines.extend([f"{pad}{'ROOT' if pose.parents[joint] < 0 else 'JOINT'} {pose.names[joint]}", f"{pad}{{",
                      f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}",
                      f"{pad}  CHANNELS {'6 Xposition Yposition Zposition' if pose.parents[joint] < 0 else '3'} "
                      "Zrotation Xrotation Yrotation"])
        for child in children[joint]:
            block(child, depth + 1)
        if not children[joint]:
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0.000000 0.000000 0.000000", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    block(0, 0)
    frames = len(pose.root_positions)
    angles = Rotation.from_matrix(pose.rotations.reshape(-1, 3, 3)).as_euler(EULER_ORDER, degrees=True)
    values = np.concatenate([pose.root_positions, angles.reshape(frames, -1)], axis=1)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text("\n".join(lines) + "\n")
    os.replace(partial, path)
    return path

"""Small inputs for the rendering tests: a person-shaped Kinect v1 pose and a fake SMPL model file."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from mdm.kinematics import default_smpl_rest_offsets, forward_kinematics
from mdm.skeleton import load_skeleton

KINECT_T_POSE = {
    # Body frame in metres: x = the person's left, y up, the person faces +z.
    "hip_center": (0.0, 1.0, 0.0), "spine": (0.0, 1.1, 0.0), "shoulder_center": (0.0, 1.45, 0.0),
    "head": (0.0, 1.65, 0.0),
    "shoulder_left": (0.18, 1.42, 0.0), "elbow_left": (0.45, 1.42, 0.0), "wrist_left": (0.7, 1.42, 0.0),
    "hand_left": (0.78, 1.42, 0.0),
    "shoulder_right": (-0.18, 1.42, 0.0), "elbow_right": (-0.45, 1.42, 0.0), "wrist_right": (-0.7, 1.42, 0.0),
    "hand_right": (-0.78, 1.42, 0.0),
    "hip_left": (0.1, 0.95, 0.0), "knee_left": (0.1, 0.5, 0.0), "ankle_left": (0.1, 0.08, 0.0),
    "foot_left": (0.1, 0.0, 0.1),
    "hip_right": (-0.1, 0.95, 0.0), "knee_right": (-0.1, 0.5, 0.0), "ankle_right": (-0.1, 0.08, 0.0),
    "foot_right": (-0.1, 0.0, 0.1),
}


def kinect_clip(frames: int, moving: bool = True) -> np.ndarray:
    """A Kinect v1 T-pose clip float32 ``[frames, 20, 3]``; if ``moving``, it walks along x and raises its left hand."""
    skeleton = load_skeleton("kinect_v1")
    pose = np.array([KINECT_T_POSE[name] for name in skeleton.joint_names], dtype=np.float32)
    clip = np.repeat(pose[None], frames, axis=0)
    if moving:
        steps = np.linspace(0.0, 1.0, frames, dtype=np.float32)
        clip[:, :, 0] += 0.5 * steps[:, None]
        clip[:, skeleton.joint_names.index("hand_left"), 1] += 0.4 * steps
    return clip


def smpl_rest_joints() -> np.ndarray:
    """float64 ``[24, 3]`` rest joints of the shipped SMPL-like body, pelvis at the origin."""
    offsets = default_smpl_rest_offsets().double()
    return forward_kinematics(torch.eye(3, dtype=torch.float64).expand(24, 3, 3), offsets,
                              torch.zeros(3, dtype=torch.float64), load_skeleton("smpl_24").parents).numpy()


def write_fake_smpl_model(path: Path) -> dict[str, np.ndarray]:
    """A tiny model file in the SMPL pickle layout: a small tetrahedron around each rest joint.

    Each tetrahedron's 4 vertices follow its joint alone; the joint regressor averages them,
    so the regressed rest joints are exactly :func:`smpl_rest_joints`. Returns the arrays.
    """
    rest = smpl_rest_joints()
    corners = 0.03 * np.array([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    tetra_faces = np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    parents = load_skeleton("smpl_24").parents
    model = {
        "v_template": (rest[:, None] + corners[None]).reshape(-1, 3),
        "shapedirs": np.zeros((96, 3, 10)),
        "posedirs": np.zeros((96, 3, 207)),
        "J_regressor": np.kron(np.eye(24), np.full((1, 4), 0.25)),
        "kintree_table": np.array([[4294967295] + [max(p, 0) for p in parents[1:]], list(range(24))], dtype=np.int64),
        "weights": np.kron(np.eye(24), np.ones((4, 1))),
        "f": (tetra_faces[None] + 4 * np.arange(24)[:, None, None]).reshape(-1, 3).astype(np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(model))
    return model

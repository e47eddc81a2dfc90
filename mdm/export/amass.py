"""AMASS-style ``.npz`` export of SMPL-parameterised clips: ``poses``, ``trans``, ``mocap_framerate``.

The file holds ``poses`` float32 ``[T, 72]`` (the 24 SMPL joints' axis-angle rotations, the root's global
orientation first, as SMPL's ``global_orient`` + ``body_pose``), ``trans`` float32 ``[T, 3]`` (the root's
translation as the source gives it: for ACTOR's HumanAct12Poses the root joint's position),
``mocap_framerate``, ``betas`` (ten zeros: the sources carry no body shape) and ``gender`` (``neutral``).
AMASS itself stores SMPL-H's 52 joints (``[T, 156]``); readers of SMPL-only data take these 72.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mdm.rotations import matrix_to_axis_angle, rotation_6d_to_matrix

NUM_BETAS = 10


def write_amass_npz(path: str | Path, rotations_6d: np.ndarray, translation: np.ndarray, fps: float) -> Path:
    """Write one clip's ``[T, 24, 6]`` 6D rotations (the dataset's ``rotations``) and ``[T, 3]`` translation."""
    matrices = rotation_6d_to_matrix(torch.as_tensor(np.asarray(rotations_6d, dtype=np.float64)))
    poses = matrix_to_axis_angle(matrices).reshape(len(matrices), -1).numpy().astype(np.float32)
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial.npz")
    np.savez(partial, poses=poses, trans=np.asarray(translation, dtype=np.float32),
             mocap_framerate=np.float64(fps), betas=np.zeros(NUM_BETAS, np.float32), gender=np.str_("neutral"))
    os.replace(partial, path)
    return path

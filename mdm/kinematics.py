"""Forward kinematics and rest-pose bone offsets.

A pose is given as one local rotation per joint (relative to its parent's frame, the root's
relative to the world), the root position, and the rest offsets: ``rest_offsets[j]`` is the
vector from joint ``j``'s parent to joint ``j`` in the rest pose, expressed in the parent's
frame. The root's own entry is added to the root position (it is zero for every offset table
made here, so the root translation is the root joint's position).

Rest offsets can come from three places:

- :func:`estimate_rest_offsets`: bone lengths measured on the data's own joint positions
  (median over frames) along given rest directions;
- :func:`default_smpl_rest_offsets`: a shipped, hand-made approximate SMPL-like body
  (``assets/skeletons/smpl_rest_offsets.yaml``; not SMPL's values);
- :func:`smpl_rest_offsets_from_model`: the mean-shape rest joints of user-supplied SMPL
  model files, read with ``smplx`` (the licensed files are never shipped).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import yaml

from mdm import ASSETS_DIR
from mdm.errors import DataFormatError, UserError
from mdm.skeleton import check_parents, load_skeleton

if TYPE_CHECKING:
    import smplx

DEFAULT_SMPL_OFFSETS_PATH = ASSETS_DIR / "skeletons" / "smpl_rest_offsets.yaml"
SMPL_GENDERS = ("neutral", "male", "female")


def _parents_list(parents: Sequence[int] | np.ndarray | torch.Tensor) -> list[int]:
    if isinstance(parents, torch.Tensor):
        parents = parents.detach().cpu().numpy()
    parents_list = [int(p) for p in np.asarray(parents).reshape(-1)]
    problem = check_parents(np.asarray(parents_list))
    if problem:
        raise ValueError(f"parents: {problem}")
    return parents_list


def depth_levels(parents: Sequence[int] | np.ndarray | torch.Tensor) -> list[list[int]]:
    """Joints grouped by depth in the tree: level 0 is the root, level d its d-th descendants.

    Every joint's parent lies in the level before its own, so processing the levels in order
    visits parents before children.
    """
    parents_list = _parents_list(parents)
    depth = []
    for joint in range(len(parents_list)):
        node, d = joint, 0
        while parents_list[node] != -1:
            node, d = parents_list[node], d + 1
        depth.append(d)
    return [[j for j in range(len(parents_list)) if depth[j] == d] for d in range(max(depth) + 1)]


def forward_kinematics(
    local_rotations: torch.Tensor,
    rest_offsets: torch.Tensor,
    root_translation: torch.Tensor,
    parents: Sequence[int] | np.ndarray | torch.Tensor,
) -> torch.Tensor:
    """Joint positions of posed skeletons.

    ``G_j = G_parent(j) @ R_j`` and ``p_j = p_parent(j) + G_parent(j) @ rest_offsets[j]``;
    the root has ``G_root = R_root`` and ``p_root = root_translation + rest_offsets[root]``.
    Vectorised over the batch dimensions; the only Python loop is over the joints in
    topological order.

    Args:
        local_rotations: ``[..., J, 3, 3]`` local rotation of each joint.
        rest_offsets: ``[J, 3]`` or ``[..., J, 3]`` (broadcast against the batch dimensions).
        root_translation: ``[..., 3]`` position of the root.
        parents: ``J`` parent indices, -1 for the root.

    Returns:
        ``[..., J, 3]`` joint positions, same dtype and device as ``local_rotations``.
    """
    parents_list = _parents_list(parents)
    num_joints = len(parents_list)
    if local_rotations.dim() < 3 or tuple(local_rotations.shape[-3:]) != (num_joints, 3, 3):
        raise ValueError(f"local_rotations must be [..., {num_joints}, 3, 3], got {tuple(local_rotations.shape)}")
    if rest_offsets.dim() < 2 or tuple(rest_offsets.shape[-2:]) != (num_joints, 3):
        raise ValueError(f"rest_offsets must be [{num_joints}, 3] or [..., {num_joints}, 3], "
                         f"got {tuple(rest_offsets.shape)}")
    batch_shape = local_rotations.shape[:-3]
    if root_translation.shape != batch_shape + (3,):
        raise ValueError(f"root_translation must be {list(batch_shape) + [3]}, got {list(root_translation.shape)}")
    offsets = rest_offsets.to(local_rotations)
    translation = root_translation.to(local_rotations)

    order = [joint for level in depth_levels(parents_list) for joint in level]
    root = order[0]
    global_rotations: list[torch.Tensor | None] = [None] * num_joints
    positions: list[torch.Tensor | None] = [None] * num_joints
    global_rotations[root] = local_rotations[..., root, :, :]
    positions[root] = (translation + offsets[..., root, :]).expand(batch_shape + (3,))
    for joint in order[1:]:
        parent_rotation = global_rotations[parents_list[joint]]
        positions[joint] = positions[parents_list[joint]] + (parent_rotation @ offsets[..., joint, :, None])[..., 0]
        global_rotations[joint] = parent_rotation @ local_rotations[..., joint, :, :]
    return torch.stack(positions, -2)


def estimate_rest_offsets(
    joints: np.ndarray | torch.Tensor | Sequence[np.ndarray | torch.Tensor],
    parents: Sequence[int] | np.ndarray | torch.Tensor,
    rest_directions: np.ndarray | torch.Tensor,
) -> torch.Tensor:
    """Rest offsets whose bone lengths are measured on the data itself.

    Each bone's length is the median over all frames of the distance between the joint and
    its parent; the offset is that length along the (normalised) rest direction. The root's
    offset is zero.

    Args:
        joints: ``[N, J, 3]`` frames, or a list of clips ``[T, J, 3]``.
        parents: ``J`` parent indices, -1 for the root.
        rest_directions: ``[J, 3]`` direction of each bone in the rest pose (root row ignored).

    Returns:
        float32 ``[J, 3]``.
    """
    parents_list = _parents_list(parents)
    num_joints = len(parents_list)
    if isinstance(joints, (np.ndarray, torch.Tensor)):
        frames = torch.as_tensor(joints)
    else:
        if len(joints) == 0:
            raise ValueError("joints: no clips given")
        frames = torch.cat([torch.as_tensor(clip) for clip in joints], 0)
    frames = frames.to(torch.float64)
    if frames.dim() != 3 or tuple(frames.shape[1:]) != (num_joints, 3) or frames.shape[0] == 0:
        raise ValueError(f"joints must be [N, {num_joints}, 3] with N >= 1, got {tuple(frames.shape)}")
    directions = torch.as_tensor(rest_directions, dtype=torch.float64)
    if tuple(directions.shape) != (num_joints, 3):
        raise ValueError(f"rest_directions must be [{num_joints}, 3], got {tuple(directions.shape)}")
    non_root = [j for j, p in enumerate(parents_list) if p >= 0]
    norms = torch.linalg.vector_norm(directions[non_root], dim=-1)
    if torch.any(norms == 0):
        raise ValueError("rest_directions: every non-root joint needs a non-zero direction")
    parent_idx = [parents_list[j] for j in non_root]
    lengths = torch.linalg.vector_norm(frames[:, non_root] - frames[:, parent_idx], dim=-1).median(0).values
    offsets = torch.zeros(num_joints, 3, dtype=torch.float64)
    offsets[non_root] = directions[non_root] / norms[:, None] * lengths[:, None]
    return offsets.to(torch.float32)


def default_smpl_rest_offsets() -> torch.Tensor:
    """The shipped approximate SMPL-like rest offsets, metres, SMPL joint order.

    Hand-made anthropometry (a person about 1.7 m tall in a T-pose, y up, facing +z, left
    = +x), not SMPL's values; see ``assets/skeletons/smpl_rest_offsets.yaml``.

    Returns:
        float32 ``[24, 3]``.
    """
    spec = yaml.safe_load(DEFAULT_SMPL_OFFSETS_PATH.read_text())
    skeleton = load_skeleton("smpl_24")
    offsets = spec["offsets"]
    if list(offsets) != list(skeleton.joint_names):
        raise DataFormatError(DEFAULT_SMPL_OFFSETS_PATH, "joints must be the smpl_24 joints in SMPL order")
    return torch.tensor([offsets[name] for name in skeleton.joint_names], dtype=torch.float32)


def default_smpl_rest_directions() -> torch.Tensor:
    """Unit rest directions of the shipped SMPL-like body (root row zero), float32 ``[24, 3]``."""
    offsets = default_smpl_rest_offsets()
    norms = torch.linalg.vector_norm(offsets, dim=-1, keepdim=True)
    return torch.where(norms > 0, offsets / norms.clamp_min(1e-12), torch.zeros_like(offsets))


def find_smpl_model_file(smpl_dir: str | Path, gender: str = "neutral") -> Path:
    """The SMPL model file ``SMPL_<GENDER>.pkl`` in ``smpl_dir`` or ``smpl_dir/smpl``.

    Raises:
        UserError: unknown gender, or no such file (the message says where to put it).
    """
    if gender not in SMPL_GENDERS:
        raise UserError(f"unknown SMPL gender {gender!r}; expected one of {', '.join(SMPL_GENDERS)}")
    name = f"SMPL_{gender.upper()}.pkl"
    smpl_dir = Path(smpl_dir)
    for candidate in (smpl_dir / name, smpl_dir / "smpl" / name):
        if candidate.is_file():
            return candidate
    raise UserError(
        f"SMPL model file {name} not found in {smpl_dir} or {smpl_dir / 'smpl'}. The SMPL body model is "
        f"licensed and not shipped: register at https://smpl.is.tue.mpg.de, download SMPL for Python, and "
        f"put the {gender} model there as {smpl_dir / 'smpl' / name} (renamed from basicmodel_*_lbs_10_207_0_v1.*.pkl)"
    )


def load_smpl_model(smpl_dir: str | Path, gender: str = "neutral") -> smplx.SMPL:
    """The ``smplx`` SMPL model of the user's ``SMPL_<GENDER>.pkl``, its kinematic tree checked.

    The model file is a pickle: load only files from a trusted source.

    Args:
        smpl_dir: folder holding ``SMPL_<GENDER>.pkl`` (directly or in ``smpl/``).
        gender: ``neutral``, ``male`` or ``female``.

    Raises:
        UserError: no such file (see :func:`find_smpl_model_file`).
        DataFormatError: the file is not a SMPL model of the 24-joint tree.
    """
    import smplx  # imported here: only SMPL users need it

    path = find_smpl_model_file(smpl_dir, gender)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note on every 10-beta SMPL file
            model = smplx.SMPL(model_path=str(path), gender=gender)
    except Exception as exc:  # a broken or foreign file: any unpickling/shape error
        raise DataFormatError(path, f"not a readable SMPL model file ({type(exc).__name__}: {exc})") from exc
    parents = [int(p) for p in model.parents.tolist()]
    parents[0] = -1
    if parents != list(load_skeleton("smpl_24").parents):
        raise DataFormatError(path, f"kinematic tree {parents} is not the SMPL 24-joint tree")
    return model


def smpl_rest_offsets_from_model(smpl_dir: str | Path, gender: str = "neutral") -> torch.Tensor:
    """Rest offsets of the mean-shape SMPL body from user-supplied model files.

    The rest joints are ``J_regressor @ v_template`` (shape coefficients zero); the offsets
    are each joint minus its parent, the root's offset zero. The model file is a pickle: load
    only files from a trusted source.

    Args:
        smpl_dir: folder holding ``SMPL_<GENDER>.pkl`` (directly or in ``smpl/``).
        gender: ``neutral``, ``male`` or ``female``.

    Returns:
        float32 ``[24, 3]`` in SMPL joint order, metres.
    """
    model = load_smpl_model(smpl_dir, gender)
    expected = list(load_skeleton("smpl_24").parents)
    rest_joints = model.J_regressor.to(torch.float64) @ model.v_template.to(torch.float64)
    offsets = torch.zeros_like(rest_joints)
    offsets[1:] = rest_joints[1:] - rest_joints[expected[1:]]
    return offsets.to(torch.float32)

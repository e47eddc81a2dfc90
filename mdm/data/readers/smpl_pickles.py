"""Readers of the SMPL-parameterised pickles of ACTOR, MDM and I-MDM (HumanAct12Poses, NTU-13).

Pickle files can run arbitrary code when loaded: read only files from a trusted source
(the ones you prepared yourself or downloaded from the dataset authors).

Layouts, as read from the public code (ACTOR ``src/datasets/humanact12poses.py`` and
``ntu13.py``, MDM ``data_loaders/a2m/humanact12poses.py`` and ``dataset.py``, I-MDM
``run/mdm_imdm_cotrain.py`` and ``data_loaders/a2m/ntu120_motion_twoperson.py``):

``humanact12poses.pkl`` (ACTOR/MDM): a dict with
    ``poses``: list of float ``[T, 72]`` SMPL axis-angle pose (24 joints x 3, root global
    orientation first; ``[T, 24, 3]`` is accepted too), ``joints3D``: list of float
    ``[T, 24, 3]`` SMPL joint positions, ``y``: list of int labels 0..11 in the order
    warm_up, walk, run, jump, drink, lift_dumbbell, sit, eat, turn steering wheel, phone,
    boxing, throw (``humanact12_coarse_action_enumerator``). ACTOR's translation is the
    root joint of ``joints3D``.

I-MDM split pickles (``ntu13_train.pkl``, ``ntu13_val.pkl``, ``humanact12poses_train.pkl``,
``humanact12poses_test.pkl``, all read by I-MDM's ``NTU120Motion_TP``): a dict with
    ``rot6d``: list of float ``[25, 6, T]`` or ``[M, 25, 6, T]`` (persons first; frames
    last, MDM's ``[J + 1, 6, T]`` layout): slots 0..23 hold the 6D rotations of the 24 SMPL
    joints in the pytorch3d convention that MDM's ``rotation_conversions`` uses (the first
    two *rows* of each matrix), slot 24 holds the root translation in its first 3 channels
    (zeros after); ``y``: list of int labels; ``seq``: list of sequence names (NTU names
    ``SsssCcccPpppRrrrAaaa`` give subject and camera). With ``num_actions`` 13 (12) and
    ``single_only``, I-MDM maps label ``y`` to itself, so labels lie in 0..12 (0..11).

NTU-13 class names. I-MDM's loader names label k by NTU-120's k-th class ("drink water",
...), which is a left-over of its NTU-120 code: NTU-13 is Action2Motion's refined subset of
13 NTU actions, ``ntu_action_labels = [6, 7, 8, 9, 22, 23, 24, 38, 80, 93, 99, 100, 102]``
(Action2Motion ``utils/paramUtil.py``; ACTOR ``NTU13.keep_actions`` with
``label = keep_actions.index(action)``). Assumption: the I-MDM pickles keep ACTOR's label
order, so label k is NTU action ``NTU13_ACTION_IDS[k]`` (pickup, throw, sitting down, ...).

Only the first person of a multi-person ``rot6d`` entry is read (all NTU-13 actions are
single-person). Where a file gives rotations only, joint positions come from forward
kinematics with the shipped approximate SMPL-like rest offsets, or with the user's SMPL
model files when ``smpl_dir`` is given.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from mdm.data.classes import load_class_table
from mdm.data.dataset import SPLIT_NAMES, MotionDataset
from mdm.errors import ConfigError, DataFormatError
from mdm.kinematics import default_smpl_rest_offsets, forward_kinematics, smpl_rest_offsets_from_model
from mdm.rotations import (
    axis_angle_to_matrix,
    matrix_to_rotation_6d,
    rotation_6d_rows_to_matrix,
    rotation_6d_to_matrix,
)
from mdm.skeleton import load_skeleton

NTU13_ACTION_IDS = (6, 7, 8, 9, 22, 23, 24, 38, 80, 93, 99, 100, 102)
"""NTU RGB+D action ids of the NTU-13 classes, in label order (Action2Motion, ACTOR)."""

HUMANACT12_FPS = 20.0
NUM_JOINTS = 24
ACTOR_KEYS = ("poses", "joints3D", "y")
IMDM_KEYS = ("rot6d", "y", "seq")
NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_CHUNK_FRAMES = 8192


def humanact12_class_names() -> list[str]:
    """The 12 HumanAct12 coarse classes in label order."""
    return list(load_class_table("humanact12").values())


def ntu13_class_names() -> list[str]:
    """The 13 NTU-13 classes in label order (NTU-120 names of :data:`NTU13_ACTION_IDS`)."""
    table = load_class_table("ntu120")
    return [table[action] for action in NTU13_ACTION_IDS]


def _load_dict(path: Path) -> dict:
    """The unpickled top-level dict of a trusted pickle file."""
    if not path.is_file():
        raise DataFormatError(path, "no such file")
    try:
        with path.open("rb") as file:
            data = pickle.load(file)
    except Exception as exc:  # unpickling raises many types for a foreign or broken file
        raise DataFormatError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise DataFormatError(path, f"the pickle must hold a dict, got {type(data).__name__}")
    return data


def _entries(path: Path, data: dict, key: str, like: tuple[str, int] | None = None) -> list:
    """``data[key]`` as a list (from a list, tuple or array of entries).

    Args:
        like: ``(other_key, count)``: the entry count must equal that key's.
    """
    value = data[key]
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise DataFormatError(path, f"key '{key}' must be a list, got {type(value).__name__}")
    entries = list(value)
    if like is not None and len(entries) != like[1]:
        raise DataFormatError(path, f"key '{key}' has {len(entries)} entries but '{like[0]}' has {like[1]}")
    return entries


def _float_array(path: Path, key: str, index: int, value: object) -> np.ndarray:
    """Entry ``index`` of ``key`` as a finite float64 array."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFormatError(path, f"key '{key}' entry {index} is not a numeric array") from None
    if not np.all(np.isfinite(array)):
        raise DataFormatError(path, f"key '{key}' entry {index} contains NaN or infinite values")
    return array


def _labels(path: Path, values: list, num_classes: int) -> np.ndarray:
    """Labels as int64, each an integer in ``[0, num_classes)``."""
    if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values):
        raise DataFormatError(path, "key 'y' must hold one integer label per clip")
    labels = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(labels) | (labels != np.round(labels)) | (labels < 0) | (labels >= num_classes)
    if np.any(bad):
        index = int(np.flatnonzero(bad)[0])
        raise DataFormatError(path, f"key 'y' entry {index} is {values[index]!r}; "
                                    f"labels must be integers in [0, {num_classes})")
    return labels.astype(np.int64)


def _check_split(split: str | None) -> None:
    if split is not None and split not in SPLIT_NAMES:
        raise ConfigError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")


def _split_column(split: str | None, count: int) -> np.ndarray | None:
    """Every clip marked ``split``, or None."""
    return None if split is None else np.full(count, split)


def _by_frames(function: Callable[..., torch.Tensor], *clip_lists: list[np.ndarray]) -> list[np.ndarray]:
    """``function`` applied to the frames of all clips at once (in chunks), split back per clip.

    Args:
        function: maps tensors ``[F, ...]`` (one per list, frames concatenated) to ``[F, ...]``.
        clip_lists: lists of per-clip arrays ``[T_i, ...]``, the same ``T_i`` across lists.

    Returns:
        One float32 array ``[T_i, ...]`` per clip.
    """
    lengths = [len(clip) for clip in clip_lists[0]]
    results: list[np.ndarray] = []
    start = 0
    while start < len(lengths):
        stop, frames = start + 1, lengths[start]
        while stop < len(lengths) and frames + lengths[stop] <= _CHUNK_FRAMES:
            frames, stop = frames + lengths[stop], stop + 1
        inputs = [torch.as_tensor(np.ascontiguousarray(np.concatenate(clips[start:stop]))) for clips in clip_lists]
        output = function(*inputs).numpy().astype(np.float32)
        results.extend(np.split(output, np.cumsum(lengths[start:stop])[:-1]))
        start = stop
    return results


def _rest_offsets(smpl_dir: str | Path | None, gender: str) -> torch.Tensor:
    return default_smpl_rest_offsets() if smpl_dir is None else smpl_rest_offsets_from_model(smpl_dir, gender)


def _read_actor_layout(path: Path, data: dict, split: str | None) -> MotionDataset:
    """HumanAct12Poses as ACTOR/MDM store it: ``poses``, ``joints3D``, ``y``."""
    poses = _entries(path, data, "poses")
    joints = _entries(path, data, "joints3D", ("poses", len(poses)))
    labels = _labels(path, _entries(path, data, "y", ("poses", len(poses))), 12)
    clips, axis_angles = [], []
    for index, (pose, joint) in enumerate(zip(poses, joints)):
        pose = _float_array(path, "poses", index, pose)
        joint = _float_array(path, "joints3D", index, joint)
        if joint.ndim != 3 or joint.shape[1:] != (NUM_JOINTS, 3) or joint.shape[0] == 0:
            raise DataFormatError(path, f"key 'joints3D' entry {index} must be [T, 24, 3] with T >= 1, "
                                        f"got {list(joint.shape)}")
        if pose.shape not in ((len(joint), 72), (len(joint), NUM_JOINTS, 3)):
            raise DataFormatError(path, f"key 'poses' entry {index} must be [{len(joint)}, 72] to match 'joints3D', "
                                        f"got {list(pose.shape)}")
        clips.append(joint.astype(np.float32))
        axis_angles.append(pose.reshape(len(joint), NUM_JOINTS, 3))
    rotations = _by_frames(lambda axis_angle: matrix_to_rotation_6d(axis_angle_to_matrix(axis_angle)), axis_angles)
    translations = [clip[:, 0].copy() for clip in clips]
    return MotionDataset(
        clips=clips, labels=labels, class_names=humanact12_class_names(), skeleton=load_skeleton("smpl_24"),
        split=_split_column(split, len(clips)), fps=HUMANACT12_FPS,
        source=f"HumanAct12Poses (ACTOR pickle {path.name})",
        rotations=rotations, translations=translations,
    )


def _read_imdm_layout(
    path: Path, data: dict, class_names: Sequence[str], source: str, split: str | None,
    smpl_dir: str | Path | None, gender: str, fps: float | None,
) -> MotionDataset:
    """An I-MDM split pickle: ``rot6d``, ``y``, ``seq``; positions by forward kinematics."""
    rot6d = _entries(path, data, "rot6d")
    labels = _labels(path, _entries(path, data, "y", ("rot6d", len(rot6d))), len(class_names))
    seq = _entries(path, data, "seq", ("rot6d", len(rot6d)))
    names = [value.decode() if isinstance(value, bytes) else str(value) for value in seq]
    rows_6d, translations = [], []
    for index, entry in enumerate(rot6d):
        array = _float_array(path, "rot6d", index, entry)
        if array.ndim == 4 and array.shape[0] >= 1:
            array = array[0]
        if array.ndim != 3 or array.shape[:2] != (NUM_JOINTS + 1, 6) or array.shape[2] == 0:
            raise DataFormatError(path, f"key 'rot6d' entry {index} must be [25, 6, T] or [M, 25, 6, T] with T >= 1, "
                                        f"got {list(np.shape(entry))}")
        frames = array.transpose(2, 0, 1)  # [T, 25, 6]
        d6 = frames[:, :NUM_JOINTS]
        half_norms = np.linalg.norm(d6.reshape(len(d6), NUM_JOINTS, 2, 3), axis=-1)
        if np.any(half_norms < 1e-6):
            frame, joint, _ = np.argwhere(half_norms < 1e-6)[0]
            raise DataFormatError(path, f"key 'rot6d' entry {index} frame {frame} joint {joint} "
                                        "is not a rotation (a zero 6D half)")
        rows_6d.append(np.ascontiguousarray(d6, dtype=np.float32))
        translations.append(np.ascontiguousarray(frames[:, NUM_JOINTS, :3], dtype=np.float32))
    rotations = _by_frames(lambda d6: matrix_to_rotation_6d(rotation_6d_rows_to_matrix(d6)), rows_6d)
    offsets = _rest_offsets(smpl_dir, gender)
    parents = load_skeleton("smpl_24").parents
    clips = _by_frames(lambda d6, root: forward_kinematics(rotation_6d_to_matrix(d6), offsets, root, parents),
                       rotations, translations)
    matches = [NTU_NAME.search(name) for name in names]
    subjects = [int(m.group(3)) if m else -1 for m in matches]
    views = [int(m.group(2)) if m else -1 for m in matches]
    clip_ids = names if len(set(names)) == len(names) else [f"{name}#{i}" for i, name in enumerate(names)]
    return MotionDataset(
        clips=clips, labels=labels, class_names=list(class_names), skeleton=load_skeleton("smpl_24"),
        subjects=np.array(subjects, np.int64), views=np.array(views, np.int64), clip_ids=clip_ids,
        split=_split_column(split, len(clips)), fps=fps, source=f"{source} (I-MDM pickle {path.name})",
        rotations=rotations, translations=translations,
    )


def _missing(data: dict, keys: Sequence[str]) -> list[str]:
    return [key for key in keys if key not in data]


def read_humanact12poses(
    path: Path, split: str | None = None, smpl_dir: str | Path | None = None, gender: str = "neutral",
) -> MotionDataset:
    """Read ``humanact12poses.pkl`` (ACTOR/MDM) or an I-MDM HumanAct12 split pickle.

    A trusted pickle only (see the module docstring). The layout is recognised by its keys:
    ``poses``/``joints3D``/``y`` (clips = ``joints3D``) or ``rot6d``/``y``/``seq`` (clips
    by forward kinematics).

    Args:
        path: the pickle file.
        split: mark every clip ``train``, ``val`` or ``test`` (None: no split).
        smpl_dir: folder of the user's SMPL model files for forward kinematics of the I-MDM
            layout (None: the shipped approximate rest offsets).
        gender: SMPL gender with ``smpl_dir``.

    Returns:
        12 classes, skeleton ``smpl_24``, clips float32 ``[T, 24, 3]``, ``rotations``
        ``[T, 24, 6]`` (6D, columns convention) and ``translations`` ``[T, 3]`` filled, fps 20.
    """
    _check_split(split)
    path = Path(path)
    data = _load_dict(path)
    if not _missing(data, ACTOR_KEYS):
        return _read_actor_layout(path, data, split)
    if not _missing(data, IMDM_KEYS):
        return _read_imdm_layout(path, data, humanact12_class_names(), "HumanAct12Poses", split, smpl_dir, gender,
                                 HUMANACT12_FPS)
    raise DataFormatError(path, f"missing key(s) {', '.join(_missing(data, ACTOR_KEYS))}; expected "
                                f"{', '.join(ACTOR_KEYS)} (ACTOR) or {', '.join(IMDM_KEYS)} (I-MDM)")


def read_ntu13(
    path: Path, split: str | None = None, smpl_dir: str | Path | None = None, gender: str = "neutral",
) -> MotionDataset:
    """Read an NTU-13 I-MDM split pickle (``rot6d``, ``y``, ``seq``).

    A trusted pickle only (see the module docstring for the layout and the class-order
    assumption).

    Args:
        path: the pickle file, e.g. ``ntu13_train.pkl``.
        split: mark every clip ``train``, ``val`` or ``test`` (None: no split).
        smpl_dir: folder of the user's SMPL model files for forward kinematics (None: the
            shipped approximate rest offsets).
        gender: SMPL gender with ``smpl_dir``.

    Returns:
        13 classes (:func:`ntu13_class_names`), skeleton ``smpl_24``, clips float32
        ``[T, 24, 3]`` by forward kinematics, ``rotations``/``translations`` filled, subjects
        and views from NTU sequence names (-1 where a name does not parse), fps unknown.
    """
    _check_split(split)
    path = Path(path)
    data = _load_dict(path)
    missing = _missing(data, IMDM_KEYS)
    if missing:
        raise DataFormatError(path, f"missing key(s) {', '.join(missing)}; expected {', '.join(IMDM_KEYS)}")
    return _read_imdm_layout(path, data, ntu13_class_names(), "NTU-13", split, smpl_dir, gender, None)

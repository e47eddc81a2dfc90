"""The pyskl annotation format: read a pickle prepared for pyskl, and write one.

pyskl (and mmaction2's skeleton pipelines) keep a dataset as one pickle holding a dict::

    {"split": {"xsub_train": [frame_dir, ...], "xsub_val": [...], ...},
     "annotations": [{"frame_dir": str, "label": int, "keypoint": float [M, T, V, C],
                      "total_frames": int, ...}, ...]}

Only 3D skeletons (``C == 3``, e.g. pyskl's ``ntu60_3danno.pkl`` / ``ntu120_3danno.pkl``) are read;
2D keypoints (``C == 2`` with ``keypoint_score``) are refused. A split protocol ``P`` takes the
clips of ``P_train`` as training and those of ``P_val`` (pyskl's name for the test part) as test;
clips in neither are left out.

Pickle files can run arbitrary code when loaded: read only files from a trusted source (ones you
prepared yourself or downloaded from the dataset's authors).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from mdm.data.classes import load_class_table
from mdm.data.dataset import MotionDataset
from mdm.errors import DataFormatError
from mdm.skeleton import load_skeleton

SKELETON_FOR_JOINTS = {25: "kinect_v2", 20: "kinect_v1", 24: "smpl_24", 15: "openni_15"}
"""The built-in skeleton taken for a joint count ``V`` when no ``skeleton`` is named."""


def _load(path: Path) -> dict:
    try:
        with path.open("rb") as file:
            data = pickle.load(file)  # noqa: S301 - trusted input only, as the module says
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as error:
        raise DataFormatError(path, f"not a readable pickle ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
            or not isinstance(data.get("split"), dict):
        raise DataFormatError(path, "not pyskl's layout: expected a dict with 'split' (a dict of lists of "
                                    "frame_dir) and 'annotations' (a list of dicts)")
    return data


def _clip(path: Path, index: int, entry: object) -> tuple[str, int, np.ndarray]:
    """``(frame_dir, label, clip)`` of one annotation; clip float32 ``[T, V, 3]`` or ``[T, M, V, 3]``."""
    where = f"annotation {index}"
    if not isinstance(entry, dict) or not {"frame_dir", "label", "keypoint"} <= set(entry):
        raise DataFormatError(path, f"{where}: needs 'frame_dir', 'label' and 'keypoint'")
    keypoint = np.asarray(entry["keypoint"], dtype=np.float32)
    if keypoint.ndim != 4:
        raise DataFormatError(path, f"{where} ({entry['frame_dir']}): 'keypoint' must be [M, T, V, C], "
                                    f"got shape {keypoint.shape}")
    if keypoint.shape[-1] != 3:
        raise DataFormatError(path, f"{where} ({entry['frame_dir']}): keypoints have {keypoint.shape[-1]} "
                                    "coordinates; only 3D skeletons are read")
    if not np.all(np.isfinite(keypoint)):
        raise DataFormatError(path, f"{where} ({entry['frame_dir']}): 'keypoint' holds NaN or infinity")
    clip = keypoint.transpose(1, 0, 2, 3)
    return str(entry["frame_dir"]), int(entry["label"]), clip[:, 0] if clip.shape[1] == 1 else clip


def read_pyskl(path: Path, protocol: str = "xsub", skeleton: str | None = None,
               class_table: str | None = None) -> MotionDataset:
    """Read a pyskl annotation pickle.

    Args:
        path: the ``.pkl`` file.
        protocol: the split prefix (``xsub``, ``xview``, ``xset``, ...): ``protocol_train`` trains,
            ``protocol_val`` tests.
        skeleton: a built-in skeleton (default: by joint count, :data:`SKELETON_FOR_JOINTS`).
        class_table: class names from ``assets/classes/<class_table>.yaml`` (e.g. ``ntu120``, whose
            first 60 names are NTU-60's); default ``class_<k>``.

    Raises:
        DataFormatError: not pyskl's layout, a bad annotation, clips of differing joint counts, an
            unknown protocol (naming the splits the file has).
    """
    path = Path(path)
    data = _load(path)
    splits = data["split"]
    names = {f"{protocol}_train": "train", f"{protocol}_val": "test"}
    if not set(names) <= set(splits):
        raise DataFormatError(path, f"no splits {sorted(names)} for protocol {protocol!r}; the file has "
                                    f"{', '.join(sorted(splits))}")
    split_of = {str(frame_dir): split for key, split in names.items() for frame_dir in splits[key]}
    clip_ids, labels, clips, split = [], [], [], []
    for index, entry in enumerate(data["annotations"]):
        frame_dir, label, clip = _clip(path, index, entry)
        if frame_dir in split_of:
            clip_ids.append(frame_dir)
            labels.append(label)
            clips.append(clip)
            split.append(split_of[frame_dir])
    if not clips:
        raise DataFormatError(path, f"no annotation belongs to {protocol}_train or {protocol}_val")
    joints = {clip.shape[-2] for clip in clips}
    if len(joints) != 1:
        raise DataFormatError(path, f"clips have differing joint counts {sorted(joints)}")
    num_joints = joints.pop()
    skeleton_name = skeleton or SKELETON_FOR_JOINTS.get(num_joints)
    if skeleton_name is None:
        raise DataFormatError(path, f"{num_joints} joints per clip: name a built-in skeleton with --option skeleton=...")
    persons = max(1 if clip.ndim == 3 else clip.shape[1] for clip in clips)
    if persons > 1:
        clips = [_pad_persons(clip, persons) for clip in clips]
    label_array = np.asarray(labels, dtype=np.int64)
    num_classes = int(label_array.max()) + 1
    if class_table is not None:
        table = list(load_class_table(class_table).values())
        class_names = table[:num_classes]
    else:
        class_names = [f"class_{k}" for k in range(num_classes)]
    return MotionDataset(clips=clips, labels=label_array, class_names=class_names,
                         skeleton=load_skeleton(skeleton_name), clip_ids=clip_ids, split=np.asarray(split),
                         source=f"pyskl: {path} ({protocol})")


def _pad_persons(clip: np.ndarray, persons: int) -> np.ndarray:
    """``[T, M', V, 3]`` (or one person ``[T, V, 3]``) zero-padded to ``[T, persons, V, 3]``."""
    if clip.ndim == 3:
        clip = clip[:, None]
    padded = np.zeros((clip.shape[0], persons) + clip.shape[2:], dtype=np.float32)
    padded[:, : clip.shape[1]] = clip
    return padded


def write_pyskl(dataset: MotionDataset, path: str | Path, protocol: str = "custom") -> Path:
    """Write ``dataset`` as a pyskl annotation pickle: training and validation clips under
    ``protocol_train``, test clips under ``protocol_val``; ``keypoint`` ``[M, T, V, 3]`` float32."""
    if dataset.split is None:
        raise DataFormatError(dataset.source or "the dataset", "has no train/test split to write pyskl's 'split'")
    clip_ids = list(dataset.clip_ids)
    annotations = []
    for clip_id, label, clip in zip(clip_ids, dataset.labels.tolist(), dataset.clips):
        persons = clip[:, None] if clip.ndim == 3 else clip
        annotations.append({"frame_dir": clip_id, "label": int(label), "total_frames": int(clip.shape[0]),
                            "keypoint": np.ascontiguousarray(persons.transpose(1, 0, 2, 3), dtype=np.float32)})
    split = {f"{protocol}_train": [c for c, s in zip(clip_ids, dataset.split) if s in ("train", "val")],
             f"{protocol}_val": [c for c, s in zip(clip_ids, dataset.split) if s == "test"]}
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as file:
        pickle.dump({"split": split, "annotations": annotations}, file, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, path)
    return path

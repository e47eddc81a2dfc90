"""Reader of HumanAct12 (Action2Motion) per-clip joint files.

Layout: one folder of ``PxxGxxRxxFxxxxTxxxxAxxxx.npy`` files (performer, group, repetition,
first frame, last frame, action), each float ``[T, 24, 3]`` SMPL joint positions. The
coarse class is the two digits after ``A`` (01..12), as in Action2Motion's
``MotionFolderDatasetHumanAct12`` with ``coarse_grained``; the last two digits are the
fine-grained sub-action and are not used. HumanAct12 has no standard train/test split.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from mdm.data.classes import load_class_table
from mdm.data.dataset import MotionDataset
from mdm.data.readers.common import check_joint_array, list_clip_files
from mdm.errors import DataFormatError
from mdm.skeleton import load_skeleton

NAME_PATTERN = re.compile(r"P(\d{2})G(\d{2})R(\d{2})F(\d{4})T(\d{4})A(\d{2})(\d{2})")
FPS = 20.0
NUM_JOINTS = 24


def _read_clip(file: Path) -> np.ndarray:
    """One clip, float32 ``[T, 24, 3]``, after checking the array."""
    try:
        clip = np.load(file, allow_pickle=False)
    except ValueError as error:
        raise DataFormatError(file, f"not a plain .npy array ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataFormatError(file, f"not a readable .npy file ({error})") from None
    if not isinstance(clip, np.ndarray) or clip.dtype.kind != "f":
        raise DataFormatError(file, f"the array must hold floats, got {getattr(clip, 'dtype', type(clip))}")
    return check_joint_array(file, clip, NUM_JOINTS, "the array")


def read_humanact12(path: Path) -> MotionDataset:
    """Read a folder of HumanAct12 ``.npy`` clips.

    Args:
        path: the folder holding the ``.npy`` files.

    Returns:
        12 classes, clips float32 ``[T, 24, 3]`` (skeleton ``smpl_24``), subjects from
        ``Pxx``, views unknown (-1), no split, clip ids = file stems, fps 20.

    Raises:
        DataFormatError: a missing or empty folder, a bad file name or action code, or an
            array that is not float ``[T, 24, 3]`` or holds NaN/inf.
    """
    path = Path(path)
    table = load_class_table("humanact12")
    label_of_action = {action: label for label, action in enumerate(table)}
    clips, labels, subjects, clip_ids = [], [], [], []
    for file in list_clip_files(path, ".npy"):
        match = NAME_PATTERN.fullmatch(file.stem)
        if match is None:
            raise DataFormatError(
                file, "file name must look like PxxGxxRxxFxxxxTxxxxAxxxx.npy (e.g. P01G01R01F0001T0064A0101.npy)"
            )
        action = int(match.group(6))
        if action not in label_of_action:
            raise DataFormatError(file, f"coarse action code {action:02d} in the file name is not in 01..12")
        clips.append(_read_clip(file))
        labels.append(label_of_action[action])
        subjects.append(int(match.group(1)))
        clip_ids.append(file.stem)
    return MotionDataset(
        clips=clips,
        labels=np.array(labels, dtype=np.int64),
        class_names=list(table.values()),
        skeleton=load_skeleton("smpl_24"),
        subjects=np.array(subjects, dtype=np.int64),
        clip_ids=clip_ids,
        fps=FPS,
        source=f"HumanAct12: {path}",
    )

"""Checks shared by the folder-of-clips readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mdm.errors import DataFormatError


def list_clip_files(folder: Path, suffix: str) -> list[Path]:
    """The files ending in ``suffix`` directly inside ``folder``, sorted by name.

    Raises:
        DataFormatError: the folder is missing, is not a folder, or holds no such file.
    """
    if not folder.exists():
        raise DataFormatError(folder, "no such folder")
    if not folder.is_dir():
        raise DataFormatError(folder, "expected a folder of clip files, got a file")
    files = sorted(p for p in folder.iterdir() if p.suffix == suffix and p.is_file())
    if not files:
        raise DataFormatError(folder, f"the folder holds no {suffix} files")
    return files


def check_joint_array(file: Path, clip: np.ndarray, num_joints: int, what: str) -> np.ndarray:
    """Check that ``clip`` is a finite ``[T, J, 3]`` array with T >= 1; return it as float32.

    Args:
        file: the file the clip came from, named in the error.
        clip: the clip as read, any numeric array.
        num_joints: the J the format requires.
        what: how the format names the array (``key 'skeletons'``, ``the array``).
    """
    if clip.ndim != 3 or clip.shape[1:] != (num_joints, 3):
        raise DataFormatError(file, f"{what} must have shape [T, {num_joints}, 3], got {list(clip.shape)}")
    if clip.shape[0] == 0:
        raise DataFormatError(file, f"{what} has no frames")
    clip = clip.astype(np.float32, copy=False)
    if not np.all(np.isfinite(clip)):
        raise DataFormatError(file, f"{what} contains NaN or infinite coordinates")
    return clip

"""Reader of KARD (Kinect Activity Recognition Dataset) skeleton text files, "realworld" coordinates.

Layout: one folder of ``aAA_sSS_eEE_realworld.txt`` files (activity 01-18, subject 01-10,
repetition 01-03). Each line is one joint, ``x y z`` in millimetres; 15 lines make one frame in
the joint order of the ``openni_15`` skeleton, and frames follow one another. 30 frames per second.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mdm.data.classes import load_class_table
from mdm.data.dataset import MotionDataset
from mdm.data.readers.common import check_joint_array, list_clip_files
from mdm.errors import DataFormatError
from mdm.skeleton import load_skeleton

NAME_PATTERN = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_realworld")
FPS = 30.0
NUM_JOINTS = 15
MM_PER_M = 1000.0
CROSS_SUBJECT_TRAIN = (1, 3, 5, 7, 9)
"""The usual cross-subject protocol: odd subjects train, even subjects test."""


def _read_clip(file: Path) -> np.ndarray:
    """One clip, float32 ``[T, 15, 3]`` in metres."""
    rows = []
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            values = [float(value) for value in fields]
        except ValueError:
            raise DataFormatError(file, f"line {number}: expected three numbers 'x y z', "
                                        f"got {line.strip()!r}") from None
        if len(values) != 3:
            raise DataFormatError(file, f"line {number}: expected three numbers 'x y z', got {len(values)}")
        rows.append(values)
    if len(rows) % NUM_JOINTS:
        raise DataFormatError(file, f"{len(rows)} joint lines do not make whole frames of {NUM_JOINTS} joints")
    clip = np.asarray(rows, dtype=np.float32).reshape(-1, NUM_JOINTS, 3) / MM_PER_M
    return check_joint_array(file, clip, NUM_JOINTS, "the file")


def read_kard(path: Path, train_subjects: tuple[int, ...] = CROSS_SUBJECT_TRAIN) -> MotionDataset:
    """Read a folder of KARD realworld text files.

    Args:
        path: the folder (``realworld``) holding the ``.txt`` files.
        train_subjects: subjects whose clips get ``split`` ``train``; the others get ``test``
            (default: the cross-subject protocol, subjects 1, 3, 5, 7, 9 train).

    Returns:
        18 classes, clips float32 ``[T, 15, 3]`` in metres (skeleton ``openni_15``), subjects
        from the file names, clip ids = file stems, fps 30.

    Raises:
        DataFormatError: a missing or empty folder, or a file with a bad name, a line that is
            not three numbers, a joint count that does not make whole frames, NaN/inf.
    """
    path = Path(path)
    table = load_class_table("kard")
    label_of_activity = {activity: label for label, activity in enumerate(table)}
    clips, labels, subjects, clip_ids = [], [], [], []
    for file in list_clip_files(path, ".txt"):
        match = NAME_PATTERN.fullmatch(file.stem)
        if match is None:
            raise DataFormatError(file, "file name must look like aAA_sSS_eEE_realworld.txt "
                                        "(e.g. a01_s01_e01_realworld.txt)")
        activity, subject, _ = (int(group) for group in match.groups())
        if activity not in label_of_activity:
            raise DataFormatError(file, f"unknown activity a{activity:02d} in the file name; KARD has a01-a18")
        clips.append(_read_clip(file))
        labels.append(label_of_activity[activity])
        subjects.append(subject)
        clip_ids.append(file.stem)
    subjects_array = np.array(subjects, dtype=np.int64)
    return MotionDataset(
        clips=clips,
        labels=np.array(labels, dtype=np.int64),
        class_names=list(table.values()),
        skeleton=load_skeleton("openni_15"),
        subjects=subjects_array,
        clip_ids=clip_ids,
        split=np.where(np.isin(subjects_array, train_subjects), "train", "test"),
        fps=FPS,
        source=f"KARD: {path}",
    )

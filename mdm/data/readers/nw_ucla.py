"""Reader of NW-UCLA (Northwestern-UCLA Multiview Action 3D) skeleton JSON files.

Layout: one folder of ``aAA_sSS_eEE_vVV.json`` files (action, subject, episode, view),
each ``{"file_name": "aAA_sSS_eEE_vVV", "skeletons": T x 20 x 3, "label": k}`` where
``k`` is 1..10 for the actions a01..a12 in order (a07 and a10 do not exist). Coordinates
are Kinect v1 camera coordinates in metres, 30 frames per second.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from mdm.data.classes import load_class_table
from mdm.data.dataset import MotionDataset
from mdm.data.readers.common import check_joint_array, list_clip_files
from mdm.errors import DataFormatError
from mdm.skeleton import load_skeleton

NAME_PATTERN = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})")
FPS = 30.0
NUM_JOINTS = 20


def _read_clip(file: Path, action: int, label: int) -> np.ndarray:
    """One clip, float32 ``[T, 20, 3]``, after checking every field of the JSON file."""
    try:
        record = json.loads(file.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(file, f"not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise DataFormatError(file, "expected a JSON object with keys file_name, skeletons, label")
    for key in ("file_name", "skeletons", "label"):
        if key not in record:
            raise DataFormatError(file, f"missing key '{key}'")
    if record["file_name"] != file.stem:
        raise DataFormatError(file, f"key 'file_name' is {record['file_name']!r} but the file is named {file.stem!r}")
    if isinstance(record["label"], bool) or record["label"] != label + 1:
        raise DataFormatError(
            file, f"key 'label' is {record['label']!r} but action a{action:02d} of the file name has label {label + 1}"
        )
    try:
        clip = np.asarray(record["skeletons"], dtype=np.float32)
    except (ValueError, TypeError):
        raise DataFormatError(file, f"key 'skeletons' must be a T x {NUM_JOINTS} x 3 array of numbers") from None
    return check_joint_array(file, clip, NUM_JOINTS, "key 'skeletons'")


def read_nw_ucla(path: Path, train_views: tuple[int, ...] = (1, 2)) -> MotionDataset:
    """Read a folder of NW-UCLA JSON clips.

    Args:
        path: the folder (e.g. ``all_sqe``) holding the ``.json`` files.
        train_views: views whose clips get ``split`` ``train``; the others get ``test``.
            The default is the standard cross-view protocol (train on views 1, 2; test on 3).

    Returns:
        10 classes, clips float32 ``[T, 20, 3]`` (skeleton ``kinect_v1``), subjects and
        views from the file names, clip ids = file stems, fps 30.

    Raises:
        DataFormatError: a missing or empty folder, or a file with a bad name, bad JSON,
            missing keys, a wrong joint shape, NaN/inf, or a label that contradicts its name.
    """
    path = Path(path)
    table = load_class_table("nw_ucla")
    label_of_action = {action: label for label, action in enumerate(table)}
    clips, labels, subjects, views, clip_ids = [], [], [], [], []
    for file in list_clip_files(path, ".json"):
        match = NAME_PATTERN.fullmatch(file.stem)
        if match is None:
            raise DataFormatError(file, "file name must look like aAA_sSS_eEE_vVV.json (e.g. a01_s01_e00_v01.json)")
        action, subject, _, view = (int(group) for group in match.groups())
        if action not in label_of_action:
            known = ", ".join(f"a{a:02d}" for a in table)
            raise DataFormatError(file, f"unknown action a{action:02d} in the file name; NW-UCLA actions are {known}")
        clips.append(_read_clip(file, action, label_of_action[action]))
        labels.append(label_of_action[action])
        subjects.append(subject)
        views.append(view)
        clip_ids.append(file.stem)
    views_array = np.array(views, dtype=np.int64)
    return MotionDataset(
        clips=clips,
        labels=np.array(labels, dtype=np.int64),
        class_names=list(table.values()),
        skeleton=load_skeleton("kinect_v1"),
        subjects=np.array(subjects, dtype=np.int64),
        views=views_array,
        clip_ids=clip_ids,
        split=np.where(np.isin(views_array, train_views), "train", "test"),
        fps=FPS,
        source=f"NW-UCLA: {path}",
    )

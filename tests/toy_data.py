"""A small labelled motion archive for training tests: smooth, learnable, seconds to make."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mdm.data.archive import write_archive
from mdm.data.dataset import MotionDataset
from mdm.skeleton import load_skeleton


def toy_dataset(clips_per_class: int = 16, num_classes: int = 3, frames: int = 24, seed: int = 0) -> MotionDataset:
    """Kinect v1 clips: a rest pose whose hands (class 0), feet (class 1) or head (class 2) oscillate.

    Four subjects; subjects 0-2 are train, subject 3 is test.
    """
    rng = np.random.default_rng(seed)
    skeleton = load_skeleton("kinect_v1")
    rest = np.zeros((20, 3), np.float32)
    for joint, parent in enumerate(skeleton.parents):
        if parent >= 0:
            name = skeleton.joint_names[joint]
            side = -0.2 if "left" in name else 0.2 if "right" in name else 0.0
            down = "hip" in name or "knee" in name or "ankle" in name or "foot" in name
            rest[joint] = rest[parent] + np.array([side * 0.5, -0.25 if down else 0.2, 0.0], np.float32)
    moving = {0: [7, 11], 1: [15, 19], 2: [3]}
    clips, labels, subjects = [], [], []
    t = np.linspace(0, 2 * np.pi, frames, dtype=np.float32)
    for label in range(num_classes):
        for i in range(clips_per_class):
            phase = rng.uniform(0, np.pi)
            clip = np.repeat(rest[None], frames, 0) + rng.normal(0, 0.005, (frames, 20, 3)).astype(np.float32)
            clip[:, moving[label % 3], 1] += 0.3 * np.sin(t + phase)[:, None]
            clip += np.array([0.0, 0.0, 3.0], np.float32)
            clips.append(clip.astype(np.float32))
            labels.append(label)
            subjects.append(i % 4)
    subjects_arr = np.array(subjects)
    return MotionDataset(clips=clips, labels=np.array(labels), class_names=[f"class_{k}" for k in range(num_classes)],
                         skeleton=skeleton, subjects=subjects_arr, split=np.where(subjects_arr == 3, "test", "train"),
                         fps=30.0, source="toy")


def toy_archive(path: Path, **kwargs: int) -> Path:
    """Write :func:`toy_dataset` to ``path`` (an ``.npz``)."""
    return write_archive(toy_dataset(**kwargs), path)

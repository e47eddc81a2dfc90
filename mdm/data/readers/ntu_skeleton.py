"""Reader of NTU RGB+D (60 and 120) ``.skeleton`` text files.

Layout: one folder of ``SsssCcccPpppRrrrAaaa.skeleton`` files (setup, camera, performer,
replication, action). Each file is plain text::

    <number of frames>
    per frame:  <number of bodies>
    per body:   bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence
                handRightState isRestricted leanX leanY trackingState      (10 values)
                <number of joints = 25>
                25 lines: x y z depthX depthY colorX colorY orientationW orientationX
                          orientationY orientationZ trackingState          (12 values)

Only x, y, z (Kinect v2 camera coordinates in metres) are kept. Bodies are followed by
their ``bodyID`` across frames; the two most active ones (largest summed variance of
their joint positions over the frames they appear in) become persons 0 and 1, the
standard practice for NTU's extra, mostly spurious, detections. Frames where neither kept
body appears are dropped; a person absent from a frame is all zeros.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mdm.data.classes import load_class_table
from mdm.data.dataset import MotionDataset
from mdm.data.readers.common import list_clip_files
from mdm.errors import ConfigError, DataFormatError
from mdm.skeleton import load_skeleton

logger = logging.getLogger("mdm.data")

NAME_PATTERN = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
FPS = 30.0
NUM_JOINTS = 25
NUM_PERSONS = 2
BODY_INFO_VALUES = 10
JOINT_VALUES = 12

NTU60_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
"""Cross-subject training performers of NTU RGB+D 60 (Shahroudy et al., CVPR 2016)."""
NTU120_TRAIN_SUBJECTS = NTU60_TRAIN_SUBJECTS + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
    89, 91, 92, 93, 94, 95, 97, 98, 100, 103,
)
"""Cross-subject training performers of NTU RGB+D 120 (Liu et al., TPAMI 2020)."""
XVIEW_TRAIN_CAMERAS = (2, 3)
PROTOCOLS = ("xsub", "xview", "xsub120", "xset")


@dataclass
class _Body:
    """Joint positions of one tracked body: ``frames`` indices and ``joints`` ``[25, 3]`` each."""

    frames: list[int] = field(default_factory=list)
    joints: list[np.ndarray] = field(default_factory=list)

    def activity(self) -> float:
        """Summed variance over time of every joint coordinate (0 for a single frame)."""
        return float(np.stack(self.joints).var(axis=0).sum())


class _Lines:
    """The lines of one file with a cursor; every error names the file and the line."""

    def __init__(self, file: Path, lines: list[str]) -> None:
        self.file = file
        self.lines = lines
        self.index = 0

    def fail(self, problem: str, line: int | None = None) -> DataFormatError:
        return DataFormatError(self.file, f"line {self.index + 1 if line is None else line}: {problem}")

    def take(self, count: int, what: str) -> list[str]:
        if self.index + count > len(self.lines):
            raise self.fail(f"the file ends early (truncated?) where {what} was expected", len(self.lines) + 1)
        taken = self.lines[self.index: self.index + count]
        self.index += count
        return taken

    def count(self, what: str) -> int:
        text = self.take(1, what)[0].strip()
        if not text.isdigit():
            self.index -= 1
            raise self.fail(f"expected {what} (a non-negative integer), got {text[:40]!r}")
        return int(text)

    def values(self, num_values: int, what: str) -> list[str]:
        tokens = self.take(1, what)[0].split()
        if len(tokens) != num_values:
            self.index -= 1
            raise self.fail(f"expected {what} ({num_values} values), got {len(tokens)} values")
        return tokens

    def joint_block(self) -> np.ndarray:
        """float64 ``[25, 3]``: x, y, z of the next 25 joint lines."""
        start = self.index
        rows = [line.split() for line in self.take(NUM_JOINTS, f"{NUM_JOINTS} joint lines")]
        for offset, row in enumerate(rows):
            if len(row) != JOINT_VALUES:
                raise self.fail(f"expected a joint line ({JOINT_VALUES} values), got {len(row)} values",
                                start + offset + 1)
        try:
            joints = np.array([row[:3] for row in rows], dtype=np.float64)
        except ValueError:
            bad = next(i for i, row in enumerate(rows) if not all(_is_number(token) for token in row[:3]))
            text = " ".join(rows[bad][:3])
            raise self.fail(f"joint coordinates are not numbers: {text!r}", start + bad + 1) from None
        if not np.all(np.isfinite(joints)):
            bad = int(np.flatnonzero(~np.all(np.isfinite(joints), axis=1))[0])
            raise self.fail("joint coordinates contain NaN or infinity", start + bad + 1)
        return joints

    def expect_end(self) -> None:
        for offset, line in enumerate(self.lines[self.index:]):
            if line.strip():
                raise self.fail("unexpected content after the last frame", self.index + offset + 1)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _parse(file: Path) -> tuple[int, dict[str, _Body]]:
    """The frame count and the bodies (by bodyID) of one ``.skeleton`` file."""
    try:
        lines = _Lines(file, file.read_text().splitlines())
    except UnicodeDecodeError:
        raise DataFormatError(file, "not a text file") from None
    num_frames = lines.count("the number of frames")
    bodies: dict[str, _Body] = {}
    for frame in range(num_frames):
        seen: set[str] = set()
        for _ in range(lines.count(f"the number of bodies of frame {frame + 1}")):
            body_id = lines.values(BODY_INFO_VALUES, "a body information line")[0]
            if body_id in seen:
                raise lines.fail(f"body {body_id} appears twice in frame {frame + 1}", lines.index)
            seen.add(body_id)
            num_joints = lines.count("the number of joints")
            if num_joints != NUM_JOINTS:
                raise lines.fail(f"expected {NUM_JOINTS} joints (Kinect v2), got {num_joints}", lines.index)
            body = bodies.setdefault(body_id, _Body())
            body.frames.append(frame)
            body.joints.append(lines.joint_block())
    lines.expect_end()
    return num_frames, bodies


def _two_persons(num_frames: int, bodies: dict[str, _Body]) -> np.ndarray:
    """float32 ``[T, 2, 25, 3]`` of the two most active bodies, frames without either dropped."""
    ranked = sorted(bodies.items(),
                    key=lambda item: (-item[1].activity(), -len(item[1].frames), item[1].frames[0], item[0]))
    clip = np.zeros((num_frames, NUM_PERSONS, NUM_JOINTS, 3), dtype=np.float32)
    present = np.zeros(num_frames, dtype=bool)
    for person, (_, body) in enumerate(ranked[:NUM_PERSONS]):
        clip[body.frames, person] = np.stack(body.joints)
        present[body.frames] = True
    return clip[present]


def _split(protocol: str, setups: np.ndarray, cameras: np.ndarray, performers: np.ndarray) -> np.ndarray:
    """``train``/``test`` per clip under an NTU evaluation protocol."""
    train = {
        "xsub": np.isin(performers, NTU60_TRAIN_SUBJECTS),
        "xview": np.isin(cameras, XVIEW_TRAIN_CAMERAS),
        "xsub120": np.isin(performers, NTU120_TRAIN_SUBJECTS),
        "xset": setups % 2 == 0,
    }[protocol]
    return np.where(train, "train", "test")


def read_ntu_skeleton(path: Path, protocol: str | None = "xsub") -> MotionDataset:
    """Read a folder of NTU RGB+D ``.skeleton`` files.

    Args:
        path: the folder holding the ``.skeleton`` files.
        protocol: which standard split goes into ``split``: ``xsub`` (NTU-60 training
            performers), ``xview`` (cameras 2 and 3 train, camera 1 test), ``xsub120``
            (NTU-120 training performers), ``xset`` (NTU-120: even setups train), or None
            for no split.

    Returns:
        Clips float32 ``[T, 2, 25, 3]`` (skeleton ``kinect_v2``); the 60 NTU-60 classes when
        every action code is at most 60, else all 120; subjects = performers, views =
        cameras, clip ids = file stems, fps 30. Files in which no body is ever tracked are
        skipped with one warning on the ``mdm.data`` logger.

    Raises:
        ConfigError: an unknown protocol.
        DataFormatError: a missing or empty folder, a bad file name, or a truncated or
            garbled file (the message names the file and the line).
    """
    if protocol is not None and protocol not in PROTOCOLS:
        raise ConfigError(f"unknown NTU protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    path = Path(path)
    table = load_class_table("ntu120")
    clips: list[np.ndarray] = []
    codes: list[list[int]] = []
    clip_ids: list[str] = []
    empty: list[str] = []
    for file in list_clip_files(path, ".skeleton"):
        match = NAME_PATTERN.fullmatch(file.stem)
        if match is None:
            raise DataFormatError(
                file, "file name must look like SsssCcccPpppRrrrAaaa.skeleton (e.g. S001C001P001R001A001.skeleton)"
            )
        action = int(match.group(5))
        if action not in table:
            raise DataFormatError(file, f"action code A{action:03d} in the file name is not in A001..A120")
        num_frames, bodies = _parse(file)
        if not bodies:
            empty.append(file.stem)
            continue
        clips.append(_two_persons(num_frames, bodies))
        codes.append([int(group) for group in match.groups()])
        clip_ids.append(file.stem)
    if empty:
        logger.warning("ntu-skeleton: skipped %d file(s) with no tracked body: %s", len(empty), ", ".join(empty))
    setups, cameras, performers, _, actions = np.array(codes, dtype=np.int64).reshape(-1, 5).T
    num_classes = 60 if len(actions) == 0 or actions.max() <= 60 else 120
    return MotionDataset(
        clips=clips,
        labels=actions - 1,
        class_names=list(table.values())[:num_classes],
        skeleton=load_skeleton("kinect_v2"),
        subjects=performers,
        views=cameras,
        clip_ids=clip_ids,
        split=None if protocol is None else _split(protocol, setups, cameras, performers),
        fps=FPS,
        source=f"NTU RGB+D skeletons: {path}",
    )

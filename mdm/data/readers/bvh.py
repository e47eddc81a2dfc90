"""Reader of BVH motion capture files: the hierarchy, per-joint channels, Euler angles to rotation
matrices, and forward kinematics to joint positions.

A BVH file is a ``HIERARCHY`` (``ROOT``/``JOINT`` blocks with an ``OFFSET`` and a ``CHANNELS`` list,
``End Site`` leaves) then ``MOTION`` (``Frames: T``, ``Frame Time: s``, one line of channel values
per frame). A joint's local translation is its position channels where it has them (as in the
Bandai Namco files, whose every joint carries six channels), else its ``OFFSET``. Its local rotation
is the product of its rotation channels' axis rotations in the order listed (``Zrotation Xrotation
Yrotation`` gives ``Rz @ Rx @ Ry``, degrees), mapping the joint's frame into its parent's. End sites
carry no channels and are not joints here.

scipy's ``Rotation.from_euler`` (intrinsic, upper-case axes) turns the angles into matrices; the
parser is written here because malformed files must be refused with the file and line named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from mdm.data.dataset import MotionDataset
from mdm.data.readers.common import list_clip_files
from mdm.errors import DataFormatError
from mdm.kinematics import forward_kinematics
from mdm.skeleton import Skeleton

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")


@dataclass
class BVHMotion:
    """One BVH clip.

    Attributes:
        joint_names: ``J`` names (end sites excluded), in file order (parents before children).
        parents: int64 ``[J]``, -1 for the root.
        offsets: float64 ``[J, 3]`` rest offsets from the parent.
        translations: float64 ``[T, J, 3]`` local translation of each joint per frame.
        rotations: float64 ``[T, J, 3, 3]`` local rotation of each joint per frame.
        frame_time: seconds per frame.
    """

    joint_names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    translations: np.ndarray
    rotations: np.ndarray
    frame_time: float

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def positions(self) -> np.ndarray:
        """Float64 ``[T, J, 3]`` joint positions in the file's units, by forward kinematics."""
        rotations = torch.as_tensor(self.rotations)
        translations = torch.as_tensor(self.translations)
        zero = torch.zeros(rotations.shape[0], 3, dtype=rotations.dtype)
        return forward_kinematics(rotations, translations, zero, self.parents.tolist()).numpy()


class _Lines:
    """The file's non-empty lines with their numbers, read token by token for the hierarchy."""

    def __init__(self, file: Path) -> None:
        self.file = file
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise DataFormatError(file, f"cannot read the file as text ({error})") from None
        self.lines = [(number, line.split()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
        self.position = 0

    def error(self, problem: str, number: int | None = None) -> DataFormatError:
        if number is None:
            number = self.lines[min(self.position, len(self.lines) - 1)][0] if self.lines else 1
        return DataFormatError(self.file, f"line {number}: {problem}")

    def next(self, what: str) -> tuple[int, list[str]]:
        if self.position >= len(self.lines):
            raise DataFormatError(self.file, f"the file ends where {what} was expected")
        line = self.lines[self.position]
        self.position += 1
        return line


def _numbers(lines: _Lines, number: int, fields: list[str], count: int, what: str) -> list[float]:
    if len(fields) != count:
        raise lines.error(f"{what} needs {count} numbers, got {len(fields)}", number)
    try:
        values = [float(value) for value in fields]
    except ValueError:
        raise lines.error(f"{what} must be numbers, got {' '.join(fields)!r}", number) from None
    if not np.all(np.isfinite(values)):
        raise lines.error(f"{what} holds NaN or infinity", number)
    return values


def _read_hierarchy(lines: _Lines) -> tuple[list[str], list[int], list[list[float]], list[list[str]]]:
    """Joint names, parents, offsets and channel lists, reading up to ``MOTION``."""
    number, fields = lines.next("HIERARCHY")
    if fields != ["HIERARCHY"]:
        raise lines.error(f"a BVH file starts with HIERARCHY, got {' '.join(fields)!r}", number)
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []  # joint index per open block; -2 marks an end site
    pending: int | None = None  # index of the joint whose '{' comes next (-2: an end site)
    while True:
        number, fields = lines.next("MOTION")
        keyword = fields[0]
        if keyword in ("ROOT", "JOINT"):
            if (keyword == "ROOT") != (not stack) or (keyword == "ROOT" and names):
                raise lines.error("ROOT must come first and only once; JOINT only inside a block", number)
            if len(fields) != 2:
                raise lines.error(f"{keyword} needs one name", number)
            if fields[1] in names:
                raise lines.error(f"joint {fields[1]!r} appears twice", number)
            if stack and stack[-1] == -2:
                raise lines.error("an End Site holds no joints", number)
            names.append(fields[1])
            parents.append(stack[-1] if stack else -1)
            offsets.append([])
            channels.append([])
            pending = len(names) - 1
        elif keyword == "End" and fields[1:] == ["Site"]:
            pending = -2
        elif keyword == "{":
            if pending is None:
                raise lines.error("'{' without a ROOT, JOINT or End Site before it", number)
            stack.append(pending)
            pending = None
        elif keyword == "}":
            if not stack:
                raise lines.error("'}' closes no block", number)
            closed = stack.pop()
            if closed >= 0 and not offsets[closed]:
                raise lines.error(f"joint {names[closed]!r} has no OFFSET", number)
        elif keyword == "OFFSET":
            values = _numbers(lines, number, fields[1:], 3, "OFFSET")
            if stack and stack[-1] >= 0:
                offsets[stack[-1]] = values
        elif keyword == "CHANNELS":
            if not stack or stack[-1] < 0:
                raise lines.error("CHANNELS outside a joint", number)
            try:
                count = int(fields[1])
            except (IndexError, ValueError):
                raise lines.error("CHANNELS needs a count", number) from None
            listed = fields[2:]
            if len(listed) != count:
                raise lines.error(f"CHANNELS says {count} but lists {len(listed)}", number)
            unknown = [c for c in listed if c not in POSITION_CHANNELS + ROTATION_CHANNELS]
            if unknown or len(set(listed)) != len(listed):
                raise lines.error(f"unknown or repeated channel(s) in {' '.join(listed)!r}", number)
            channels[stack[-1]] = listed
        elif keyword == "MOTION":
            if stack or not names:
                raise lines.error("MOTION before the hierarchy is closed" if stack else "no ROOT before MOTION",
                                  number)
            return names, parents, offsets, channels
        else:
            raise lines.error(f"unexpected {keyword!r} in the hierarchy", number)


def _header_value(lines: _Lines, label: str) -> tuple[int, str]:
    number, fields = lines.next(label)
    text = " ".join(fields)
    if not text.startswith(label + ":"):
        raise lines.error(f"expected '{label}: ...', got {text!r}", number)
    return number, text[len(label) + 1:].strip()


def read_bvh(file: str | Path) -> BVHMotion:
    """Read one BVH file.

    Raises:
        DataFormatError: the file breaks the format; the message names the file and the line.
    """
    file = Path(file)
    lines = _Lines(file)
    names, parents, offsets, channels = _read_hierarchy(lines)
    number, value = _header_value(lines, "Frames")
    try:
        frames = int(value)
    except ValueError:
        raise lines.error(f"Frames must be a whole number, got {value!r}", number) from None
    number, value = _header_value(lines, "Frame Time")
    try:
        frame_time = float(value)
    except ValueError:
        raise lines.error(f"Frame Time must be a number, got {value!r}", number) from None
    if frames < 1 or not frame_time > 0:
        raise lines.error("Frames must be at least 1 and Frame Time positive", number)
    width = sum(len(c) for c in channels)
    rows = lines.lines[lines.position:]
    if len(rows) != frames:
        raise DataFormatError(file, f"Frames says {frames} but {len(rows)} frame lines follow")
    values = np.array([_numbers(lines, n, fields, width, "a frame line") for n, fields in rows], dtype=np.float64)

    offsets_array = np.asarray(offsets, dtype=np.float64)
    translations = np.broadcast_to(offsets_array, (frames, len(names), 3)).copy()
    rotations = np.broadcast_to(np.eye(3), (frames, len(names), 3, 3)).copy()
    column = 0
    for joint, listed in enumerate(channels):
        block = values[:, column:column + len(listed)]
        column += len(listed)
        for axis, name in enumerate(POSITION_CHANNELS):
            if name in listed:
                translations[:, joint, axis] = block[:, listed.index(name)]
        order = [name for name in listed if name in ROTATION_CHANNELS]
        if order:
            angles = block[:, [listed.index(name) for name in order]]
            axes = "".join(name[0] for name in order)
            rotations[:, joint] = Rotation.from_euler(axes, angles, degrees=True).as_matrix()
    return BVHMotion(joint_names=names, parents=np.asarray(parents, dtype=np.int64), offsets=offsets_array,
                     translations=translations, rotations=rotations, frame_time=frame_time)


def read_bvh_files(path: Path) -> MotionDataset:
    """Joint positions of one ``.bvh`` file or of every ``.bvh`` in a folder (one shared hierarchy), as an
    unlabelled dataset (one class, ``unlabelled``), for rendering or converting any motion capture.

    Raises:
        DataFormatError: a malformed file, or files whose hierarchies differ.
    """
    path = Path(path)
    files = [path] if path.is_file() else list_clip_files(path, ".bvh")
    motions = [read_bvh(file) for file in files]
    first = motions[0]
    for file, motion in zip(files, motions):
        if motion.joint_names != first.joint_names or not np.array_equal(motion.parents, first.parents):
            raise DataFormatError(file, f"its hierarchy differs from {files[0].name}'s; read such files one by one")
    skeleton = Skeleton.from_parents(first.parents, first.joint_names, name=f"bvh:{files[0].stem}")
    return MotionDataset(clips=[m.positions().astype(np.float32) for m in motions],
                         labels=np.zeros(len(motions), dtype=np.int64), class_names=["unlabelled"], skeleton=skeleton,
                         clip_ids=[file.stem for file in files], fps=first.fps, source=f"BVH: {path}")

"""3D stick figures of skeleton clips: bones of the skeleton, left and right limbs in their own colours."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from mpl_toolkits.mplot3d import Axes3D
from mpl_toolkits.mplot3d.art3d import Line3DCollection

from mdm.render.figure import Bounds, Panel, View, facing_azimuth, iter_frames, to_plot
from mdm.render.video import DEFAULT_FPS, check_video_path, write_video
from mdm.skeleton import Skeleton

Motion = np.ndarray
"""One clip: ``[T, J, 3]``, or ``[T, M, J, 3]`` for M persons (an absent person is all zeros); a
torch tensor on any device is accepted too (this module does not import torch)."""

CENTRE, LEFT, RIGHT = 0, 1, 2
PERSON_COLOURS = (
    ("#303030", "#d62728", "#1f77b4"),
    ("#7f7f7f", "#ff7f0e", "#17becf"),
    ("#8c564b", "#e377c2", "#2ca02c"),
)
"""Per person (cycled): colours of centre, left and right bones."""
SHADOW_COLOUR = (0.55, 0.55, 0.52, 1.0)
"""Bones projected straight down onto the ground plane."""


def joint_sides(skeleton: Skeleton) -> np.ndarray:
    """int64 ``[J]``: :data:`LEFT`, :data:`RIGHT` or :data:`CENTRE` for each joint.

    From the skeleton's ``(left, right)`` mirror pairs, and for joints outside any pair from
    their names (containing ``left`` or ``right``).
    """
    sides = np.full(skeleton.num_joints, CENTRE, dtype=np.int64)
    for index, name in enumerate(skeleton.joint_names):
        lowered = name.lower()
        sides[index] = LEFT if "left" in lowered else RIGHT if "right" in lowered else CENTRE
    for left, right in skeleton.mirror_pairs:
        sides[left], sides[right] = LEFT, RIGHT
    return sides


def as_persons(motion: Motion, skeleton: Skeleton) -> np.ndarray:
    """A clip as float64 ``[T, M, J, 3]`` (``M = 1`` for a ``[T, J, 3]`` clip)."""
    if hasattr(motion, "detach"):  # a torch tensor
        motion = motion.detach().cpu().numpy()
    array = np.asarray(motion, dtype=np.float64)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[-2:] != (skeleton.num_joints, 3) or array.shape[0] == 0:
        raise ValueError(f"a clip must be [T, {skeleton.num_joints}, 3] or [T, M, {skeleton.num_joints}, 3] with "
                         f"T >= 1 (skeleton {skeleton.name}), got {list(np.shape(motion))}")
    if not np.all(np.isfinite(array)):
        raise ValueError("a clip contains NaN or infinite coordinates")
    return array


class StickPanel(Panel):
    """A stick-figure clip: one line collection per person, segments updated per frame.

    Args:
        motion: ``[T, J, 3]`` or ``[T, M, J, 3]`` joint positions.
        skeleton: bones, left/right joints and the up axis.
    """

    def __init__(self, motion: Motion, skeleton: Skeleton) -> None:
        persons = as_persons(motion, skeleton)
        self.points = to_plot(persons, skeleton.up_axis)
        self.present = np.any(persons != 0.0, axis=(-2, -1))
        self.bones = np.array(skeleton.bones, dtype=np.int64).reshape(-1, 2)
        self.bone_sides = joint_sides(skeleton)[self.bones[:, 1]]
        self.num_frames = len(persons)
        self.bounds = Bounds.of(self.points[self.present].reshape(-1, 3))
        self.facing = facing_azimuth(self.points, self.present, skeleton)
        self.lines: list[Line3DCollection] = []
        self.shadows: list[Line3DCollection] = []
        self.dots: list[Artist] = []

    def draw(self, ax: Axes3D, view: View, azim: float) -> list[Artist]:
        width = max(1.0, view.panel_px / 110.0)
        for person in range(self.points.shape[1]):
            palette = PERSON_COLOURS[person % len(PERSON_COLOURS)]
            colours = [palette[side] for side in self.bone_sides]
            shadow = Line3DCollection([], colors=SHADOW_COLOUR, linewidths=view.points(width), capstyle="round",
                                      zorder=1)
            lines = Line3DCollection([], colors=colours, linewidths=view.points(width), capstyle="round", zorder=2)
            ax.add_collection3d(shadow, autolim=False)
            ax.add_collection3d(lines, autolim=False)
            (dots,) = ax.plot([], [], [], linestyle="none", marker="o", markersize=view.points(1.6 * width),
                              color=palette[CENTRE], zorder=3)
            self.lines.append(lines)
            self.shadows.append(shadow)
            self.dots.append(dots)
        return [artist for group in zip(self.shadows, self.lines, self.dots) for artist in group]

    def update(self, frame: int) -> None:
        for person, (lines, shadow, dots) in enumerate(zip(self.lines, self.shadows, self.dots)):
            present = bool(self.present[frame, person])
            for artist in (lines, shadow, dots):
                artist.set_visible(present)
            if present:
                joints = self.points[frame, person]
                segments = joints[self.bones]
                on_floor = np.concatenate((segments[..., :2], np.full_like(segments[..., 2:], self.bounds.floor)), -1)
                lines.set_segments(segments)
                shadow.set_segments(on_floor)
                dots.set_data_3d(joints[:, 0], joints[:, 1], joints[:, 2])


def _panels(motion: Motion | Sequence[Motion], skeleton: Skeleton | Sequence[Skeleton]) -> list[StickPanel]:
    motions = [motion] if isinstance(motion, np.ndarray) or hasattr(motion, "detach") else list(motion)
    skeletons = [skeleton] * len(motions) if isinstance(skeleton, Skeleton) else list(skeleton)
    if len(skeletons) != len(motions):
        raise ValueError(f"{len(skeletons)} skeletons for {len(motions)} clips")
    return [StickPanel(m, s) for m, s in zip(motions, skeletons)]


def render_frames(
    motion: Motion | Sequence[Motion],
    skeleton: Skeleton | Sequence[Skeleton],
    *,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    grid: tuple[int, int] | None = None,
    view: View = View(),
) -> np.ndarray:
    """Stick-figure frames of one clip or a grid of clips, e.g. to show in a notebook.

    Args:
        motion: a clip ``[T, J, 3]`` / ``[T, M, J, 3]`` or a list of clips (one panel each).
        skeleton: the skeleton of every clip, or one per clip.
        titles: one caption per clip (class name, source ...), or None.
        title: a line above the whole figure, or None.
        grid: ``(cols, rows)`` of panels; None chooses a near-square layout.
        view: panel size, dpi and camera.

    Returns:
        uint8 ``[T, H, W, 3]`` with ``T`` the longest clip's length.
    """
    return np.stack(list(iter_frames(_panels(motion, skeleton), titles=titles, title=title, grid=grid, view=view)))


def render_video(
    motion: Motion | Sequence[Motion],
    skeleton: Skeleton | Sequence[Skeleton],
    path: str | Path,
    *,
    fps: float | None = None,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    grid: tuple[int, int] | None = None,
    view: View = View(),
) -> Path:
    """Write stick-figure clips as an ``.mp4`` or ``.gif`` video (see :func:`render_frames`).

    The output path is checked before anything is drawn, and the file appears only when complete.
    ``fps`` None means 30 (datasets of unknown frame rate).

    Returns:
        The path written.

    Raises:
        ConfigError: the extension is not ``.mp4`` or ``.gif``, or a bad grid.
        UserError: the output cannot be written.
    """
    path = check_video_path(path)
    frames = iter_frames(_panels(motion, skeleton), titles=titles, title=title, grid=grid, view=view)
    return write_video(frames, path, DEFAULT_FPS if fps is None else fps)

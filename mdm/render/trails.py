"""Motion trails: many clips on one PNG, each drawn as a few poses over time (front view).

A quick way to see at a glance that generated clips move like their class: one row per
class, one panel per clip, poses fading from light (start) to dark (end).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from mdm.render.stick import LEFT, RIGHT, as_persons, joint_sides  # noqa: E402
from mdm.skeleton import Skeleton  # noqa: E402

SIDE_COLOURS = {LEFT: (0.84, 0.15, 0.16), RIGHT: (0.12, 0.47, 0.71)}
CENTRE_COLOUR = (0.2, 0.2, 0.2)


def _front_view(points: np.ndarray, up_axis: int) -> np.ndarray:
    """``[..., 3]`` -> ``[..., 2]``: the lateral coordinate and height (looking along depth)."""
    lateral = 0 if up_axis != 0 else 2
    return np.stack([points[..., lateral], points[..., up_axis]], -1)


def plot_motion_trails(
    clips: Sequence[np.ndarray],
    labels: Sequence[int],
    class_names: Sequence[str],
    skeleton: Skeleton,
    path: str | Path,
    *,
    poses_per_clip: int = 5,
    panel_inches: float = 1.1,
    title: str = "",
) -> Path:
    """Write a PNG with one row per class present and one panel per clip of that class.

    Args:
        clips: clips ``[T, J, 3]`` (or ``[T, M, J, 3]``: the first person is drawn).
        labels: class index of each clip.
        class_names: names of all classes.
        skeleton: the clips' skeleton.
        path: the PNG to write.
        poses_per_clip: poses drawn per clip, evenly spaced in time.
    """
    rows = sorted(set(int(label) for label in labels))
    by_class = {row: [clip for clip, label in zip(clips, labels) if int(label) == row] for row in rows}
    columns = max(len(group) for group in by_class.values())
    sides = joint_sides(skeleton)
    colours = np.array([SIDE_COLOURS.get(int(sides[child]), CENTRE_COLOUR) for _, child in skeleton.bones])
    figure, axes = plt.subplots(len(rows), columns, figsize=(panel_inches * columns + 1.2, panel_inches * len(rows)),
                                squeeze=False)
    for r, row in enumerate(rows):
        for c in range(columns):
            axis = axes[r, c]
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_frame_on(False)
            if c == 0:
                axis.set_ylabel(class_names[row], rotation=0, ha="right", va="center", fontsize=8)
            if c >= len(by_class[row]):
                continue
            persons = as_persons(by_class[row][c], skeleton)[:, 0]
            points = _front_view(persons - persons[0, skeleton.root], skeleton.up_axis)
            times = np.linspace(0, len(points) - 1, poses_per_clip).round().astype(int)
            for k, t in enumerate(times):
                segments = np.stack([points[t, [p for p, _ in skeleton.bones]], points[t, [ch for _, ch in skeleton.bones]]], 1)
                alpha = 0.25 + 0.75 * k / max(poses_per_clip - 1, 1)
                axis.add_collection(LineCollection(segments, colors=colours, alpha=alpha, linewidths=1.0))
            low, high = points.reshape(-1, 2).min(0), points.reshape(-1, 2).max(0)
            centre, half = (low + high) / 2, (high - low).max() / 2 * 1.1 + 1e-6
            axis.set_xlim(centre[0] - half, centre[0] + half)
            axis.set_ylim(centre[1] - half, centre[1] + half)
            axis.set_aspect("equal")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)

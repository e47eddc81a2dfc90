"""The figure engine shared by stick-figure and mesh videos.

One 3D panel per clip, laid out on a grid, each with its own fixed axes for the whole clip,
a ground plane and a caption. The figure is built once; per frame each panel only updates
the data of its artists and the Agg canvas renders to an RGB array. Matplotlib is used
through :class:`~matplotlib.figure.Figure` and the Agg canvas directly (never pyplot), so
no window ever opens and no global figure state is touched.

Plot coordinates: matplotlib's 3D axes have z up. Data with up axis ``u`` are brought there
by a cyclic permutation of the axes (:func:`to_plot`), which is a rotation, so a figure is
never mirrored (its left hand stays its left hand).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.artist import Artist
from mpl_toolkits.mplot3d import Axes3D, proj3d
from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

from mdm.errors import ConfigError
from mdm.skeleton import Skeleton

PIXEL_BLOCK = 16
"""Frame sizes are multiples of this, so video encoders never rescale (H.264 macroblocks)."""
TITLE_BAND_PX = 32
FACING_TURN_DEG = 30.0
DEFAULT_AZIM_DEG = -60.0
FIT_MARGIN = 0.96
"""Each panel's box fills this fraction of its axes."""


@dataclass(frozen=True)
class View:
    """How panels look.

    Attributes:
        panel_size: pixels of one square panel (rounded up to a multiple of 16).
        dpi: dots per inch of the figure (scales text and line widths, not the pixel size).
        elev: camera elevation in degrees above the ground plane.
        azim: camera azimuth in degrees in plot coordinates; None puts each panel's camera in
            front of its figure (found from the left/right joints), turned by 30 degrees, or
            at matplotlib's default -60 when the skeleton has no left/right joints.
    """

    panel_size: int = 320
    dpi: int = 80
    elev: float = 15.0
    azim: float | None = None

    def __post_init__(self) -> None:
        if self.panel_size < PIXEL_BLOCK or self.dpi < 1:
            raise ConfigError(f"panel_size must be >= {PIXEL_BLOCK} and dpi >= 1, got {self.panel_size} and {self.dpi}")

    @property
    def panel_px(self) -> int:
        return int(math.ceil(self.panel_size / PIXEL_BLOCK) * PIXEL_BLOCK)

    def points(self, pixels: float) -> float:
        """Typographic points (font sizes, line widths) of a length in pixels."""
        return pixels * 72.0 / self.dpi


def to_plot(points: np.ndarray, up_axis: int) -> np.ndarray:
    """Points ``[..., 3]`` in data axes -> plot axes with z up (a cyclic axis permutation)."""
    if up_axis not in (0, 1, 2):
        raise ValueError(f"up_axis must be 0, 1 or 2, got {up_axis}")
    return np.roll(points, 2 - up_axis, axis=-1)


def camera_direction(elev: float, azim: float) -> np.ndarray:
    """Unit vector ``[3]`` from the scene towards matplotlib's camera at ``(elev, azim)`` degrees."""
    e, a = math.radians(elev), math.radians(azim)
    return np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])


def facing_azimuth(points: np.ndarray, present: np.ndarray, skeleton: Skeleton) -> float | None:
    """Azimuth in degrees (plot coordinates) of the direction a figure faces, or None if unknown.

    Forward is ``left x up`` with ``left`` the summed left-minus-right vector of the
    skeleton's mirror pairs over the present persons of all frames.

    Args:
        points: ``[T, M, J, 3]`` joints in plot coordinates.
        present: bool ``[T, M]``, persons to use.
        skeleton: gives the ``(left, right)`` mirror pairs.
    """
    if not skeleton.mirror_pairs or not present.any():
        return None
    left, right = np.array(skeleton.mirror_pairs).T
    lx, ly = (points[present][:, left] - points[present][:, right]).sum(axis=(0, 1))[:2]
    if math.hypot(lx, ly) < 1e-9:
        return None
    return math.degrees(math.atan2(-lx, ly))


@dataclass(frozen=True)
class Bounds:
    """Fixed axes of one panel, the same scale on every axis.

    Attributes:
        center: ``(x, y)`` centre of the ground square.
        half: half side of the ground square.
        floor: height of the ground (the lowest point).
        top: height of the highest point (plus a margin).
    """

    center: tuple[float, float]
    half: float
    floor: float
    top: float

    @classmethod
    def of(cls, points: np.ndarray) -> Bounds:
        """The bounds of plot-coordinate points ``[N, 3]`` (a unit box at the origin when empty)."""
        if len(points) == 0:
            return cls((0.0, 0.0), 1.0, 0.0, 1.0)
        low, high = points.min(axis=0), points.max(axis=0)
        height = max(float(high[2] - low[2]), 0.1)
        half = max(float((high[:2] - low[:2]).max()) / 2.0 * 1.15, 0.3 * height)
        center = (low[:2] + high[:2]) / 2.0
        return cls((float(center[0]), float(center[1])), half, float(low[2]), float(low[2]) + 1.05 * height)


class Panel(ABC):
    """One clip in one 3D axes: static parts drawn once, moving parts updated per frame.

    The engine renders the static figure (ground, captions) once and keeps it as a
    background; per frame it restores the background and draws only the moving artists
    (blitting), so a frame costs a few milliseconds per panel.
    """

    num_frames: int
    bounds: Bounds
    facing: float | None
    """Azimuth the figure faces (degrees, plot coordinates), or None if unknown."""

    @abstractmethod
    def draw(self, ax: Axes3D, view: View, azim: float) -> list[Artist]:
        """Create the moving artists on ``ax`` (axes, ground and camera are already set).

        Returns:
            The artists that :meth:`update` changes, in drawing order.
        """

    @abstractmethod
    def update(self, frame: int) -> None:
        """Set the moving artists to frame ``frame`` (``0 <= frame < num_frames``)."""


def resolve_grid(count: int, grid: tuple[int, int] | None) -> tuple[int, int]:
    """``(cols, rows)`` for ``count`` panels: ``grid`` checked, or a near-square default."""
    if grid is None:
        cols = count if count <= 4 else math.ceil(math.sqrt(count))
        return cols, math.ceil(count / cols)
    cols, rows = grid
    if cols < 1 or rows < 1:
        raise ConfigError(f"grid {cols}x{rows}: columns and rows must be >= 1")
    if cols * rows < count:
        raise ConfigError(f"grid {cols}x{rows} has {cols * rows} cells for {count} clips")
    return cols, rows


def _fit_zoom(ax: Axes3D, corners: np.ndarray) -> float:
    """The zoom at which the box with these plot-coordinate corners ``[8, 3]`` just fills the axes.

    Measured at the current zoom (the projection scales about the axes centre).
    """
    ax.apply_aspect()
    xs, ys, _ = proj3d.proj_transform(corners[:, 0], corners[:, 1], corners[:, 2], ax.get_proj())
    x0, y0, width, height = ax.bbox.bounds
    offsets = np.abs(ax.transData.transform(np.stack((xs, ys), axis=1)) - (x0 + width / 2, y0 + height / 2))
    return float(min(width / 2 / offsets[:, 0].max(), height / 2 / offsets[:, 1].max()))


def _setup_axes(ax: Axes3D, bounds: Bounds, view: View, azim: float) -> None:
    """Fixed limits, the same scale on every axis, no panes, a ground plane, the camera."""
    ax.set_axis_off()
    ax.computed_zorder = False
    (cx, cy), half, floor = bounds.center, bounds.half, bounds.floor
    x0, x1, y0, y1 = cx - half, cx + half, cy - half, cy + half
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_zlim(floor, bounds.top)
    ax.view_init(elev=view.elev, azim=azim)
    aspect = (2 * half, 2 * half, bounds.top - floor)
    ax.set_box_aspect(aspect)
    corners = np.array([(x, y, z) for x in (x0, x1) for y in (y0, y1) for z in (floor, bounds.top)])
    ax.set_box_aspect(aspect, zoom=FIT_MARGIN * _fit_zoom(ax, corners))
    ax.add_collection3d(Poly3DCollection([[(x0, y0, floor), (x1, y0, floor), (x1, y1, floor), (x0, y1, floor)]],
                                         facecolor=(0.85, 0.85, 0.82, 1.0), edgecolor="none", zorder=0), autolim=False)
    ticks = np.linspace(0.0, 1.0, 9)
    lines = [[(x0 + (x1 - x0) * s, y0, floor), (x0 + (x1 - x0) * s, y1, floor)] for s in ticks]
    lines += [[(x0, y0 + (y1 - y0) * s, floor), (x1, y0 + (y1 - y0) * s, floor)] for s in ticks]
    ax.add_collection3d(Line3DCollection(lines, colors=(0.7, 0.7, 0.68, 1.0), linewidths=view.points(1.0), zorder=0),
                        autolim=False)


def _shrink_to_width(text: Text, pixels: float, canvas: FigureCanvasAgg) -> None:
    """Make the font of ``text`` smaller until it is at most ``pixels`` wide."""
    width = text.get_window_extent(renderer=canvas.get_renderer()).width
    if width > pixels:
        text.set_fontsize(text.get_fontsize() * pixels / width)


def iter_frames(
    panels: Sequence[Panel],
    *,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    grid: tuple[int, int] | None = None,
    view: View = View(),
) -> Iterator[np.ndarray]:
    """Render panels frame by frame.

    The video lasts as long as the longest panel; shorter ones hold their last frame.

    Args:
        panels: one per clip, laid out row by row.
        titles: one caption per panel (may hold newlines), or None.
        title: a line above the whole grid, or None.
        grid: ``(cols, rows)``; None chooses a near-square layout.
        view: sizes and camera.

    Returns:
        An iterator of uint8 ``[H, W, 3]`` frames, ``H`` and ``W`` multiples of 16; the
        arguments are checked and the figure is built before it is returned.
    """
    if not panels:
        raise ValueError("nothing to render: no clips given")
    if titles is not None and len(titles) != len(panels):
        raise ValueError(f"{len(titles)} titles for {len(panels)} clips")
    cols, rows = resolve_grid(len(panels), grid)
    size = view.panel_px
    band = TITLE_BAND_PX if title else 0
    width, height = cols * size, rows * size + band
    figure = Figure(figsize=(width / view.dpi, height / view.dpi), dpi=view.dpi, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    caption_px = max(8.0, 0.045 * size)
    caption_lines = max((text.count("\n") + 1 for text in titles), default=0) if titles else 0
    caption_band = caption_lines * caption_px * 1.35 + (4 if caption_lines else 0)
    moving: list[tuple[Axes3D, list[Artist]]] = []
    for index, panel in enumerate(panels):
        col, row = index % cols, index // cols
        left, top = col * size, band + row * size
        axes_rect = [left / width, (height - top - size) / height, size / width, (size - caption_band) / height]
        ax = figure.add_axes(axes_rect, projection="3d")
        azim = view.azim if view.azim is not None else (
            DEFAULT_AZIM_DEG if panel.facing is None else panel.facing + FACING_TURN_DEG)
        _setup_axes(ax, panel.bounds, view, azim)
        moving.append((ax, panel.draw(ax, view, azim)))
        if titles:
            caption = figure.text((left + size / 2) / width, 1.0 - (top + 3) / height, titles[index], ha="center",
                                  va="top", fontsize=view.points(caption_px), linespacing=1.2)
            _shrink_to_width(caption, size - 6, canvas)
    if title:
        heading = figure.text(0.5, 1.0 - band / 2 / height, title, ha="center", va="center",
                              fontsize=view.points(0.55 * band), weight="bold")
        _shrink_to_width(heading, width - 8, canvas)
    counter = figure.text(0.004, 0.004, "", ha="left", va="bottom", fontsize=view.points(max(7.0, 0.035 * size)),
                          color=(0.4, 0.4, 0.4), animated=True)
    for _, artists in moving:
        for artist in artists:
            artist.set_animated(True)
    return _blit_frames(canvas, panels, moving, counter)


def _blit_frames(canvas: FigureCanvasAgg, panels: Sequence[Panel], moving: list[tuple[Axes3D, list[Artist]]],
                 counter: Text) -> Iterator[np.ndarray]:
    """Draw the static background once, then per frame restore it and draw the moving artists."""
    canvas.draw()  # the static background; also fixes each axes' projection matrix
    background = canvas.copy_from_bbox(canvas.figure.bbox)
    renderer = canvas.get_renderer()
    num_frames = max(panel.num_frames for panel in panels)
    for frame in range(num_frames):
        canvas.restore_region(background)
        for panel, (ax, artists) in zip(panels, moving):
            panel.update(min(frame, panel.num_frames - 1))
            for artist in artists:
                if artist.get_visible() and hasattr(artist, "do_3d_projection"):
                    artist.do_3d_projection()
                ax.draw_artist(artist)
        counter.set_text(f"{frame + 1}/{num_frames}")
        counter.draw(renderer)
        yield np.asarray(canvas.buffer_rgba())[..., :3].copy()

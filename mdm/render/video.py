"""Writing frames as video files: MP4 through imageio's bundled ffmpeg, GIF through Pillow.

No system ffmpeg is needed: ``imageio-ffmpeg`` ships the binary. Files are written under a
temporary name in the target folder and renamed when complete, so an interrupted or failed
write never leaves a half-written video under the requested name.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mdm.errors import ConfigError, UserError

VIDEO_SUFFIXES = (".mp4", ".gif")
DEFAULT_FPS = 30.0
"""Frame rate of videos whose data has none."""


def check_video_path(path: str | Path) -> Path:
    """Check that a video can be written at ``path``, without creating anything: missing folders
    must be creatable in their nearest existing ancestor (:func:`write_video` creates them).

    Raises:
        ConfigError: the extension is not one of :data:`VIDEO_SUFFIXES`.
        UserError: the path is a folder, or its folder cannot be created or written, or it is an
            ``.mp4`` and the ``imageio-ffmpeg`` package (which ships ffmpeg) is not installed.
    """
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(f"{path}: unsupported video extension {path.suffix or '(none)'!r}; "
                          f"use one of {', '.join(VIDEO_SUFFIXES)}")
    if path.suffix.lower() == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise UserError(f"{path}: writing MP4 needs the imageio-ffmpeg package (python3 -m pip install "
                        "imageio-ffmpeg, one of this toolkit's requirements); or write a .gif")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a video file name")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{path}: cannot create the output folder ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{path}: not writable")
    return path


def _write_mp4(frames: Iterable[np.ndarray], path: Path, fps: float) -> int:
    import imageio.v2 as imageio

    count = 0
    writer = imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                                macro_block_size=16, ffmpeg_log_level="error")
    try:
        for frame in frames:
            writer.append_data(frame)
            count += 1
    finally:  # not ``with``: imageio's writer does not close (and stop ffmpeg) when the block raises
        writer.close()
    return count


def _write_gif(frames: Iterable[np.ndarray], path: Path, fps: float) -> int:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    if images:
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(10, round(1000.0 / fps)), loop=0)
    return len(images)


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float) -> Path:
    """Write uint8 frames ``[H, W, 3]`` (an iterable, consumed once) as an ``.mp4`` or ``.gif``.

    Args:
        frames: all of the same size; for MP4, ``H`` and ``W`` should be multiples of 16.
        path: ``.mp4`` or ``.gif``; written atomically.
        fps: frames per second.

    Returns:
        The path written.
    """
    path = check_video_path(path)
    if not fps > 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    writer = _write_mp4 if path.suffix.lower() == ".mp4" else _write_gif
    try:
        if writer(frames, tmp, fps) == 0:
            raise ValueError("no frames to write")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

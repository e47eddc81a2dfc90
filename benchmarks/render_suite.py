"""The ``render`` benchmark: how fast a stick-figure clip becomes an MP4 (and a GIF).

The clip is a ``walk_in_place`` clip of the built-in procedural dataset (Kinect v1, 20
joints), so the suite needs no data files. Timings: one warm-up, then the
median of repeated runs; each run renders every frame and writes the file.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from mdm.data.procedural import CLASS_NAMES, generate_procedural_dataset
from mdm.render import View, render_video
from mdm.skeleton import Skeleton


@dataclass
class SuiteConfig:
    """Options of the render suite.

    Attributes:
        frames: frames of the clip.
        repeats: timed renders per format (after one warm-up).
        panel_size: pixels of the (square) panel.
        dpi: figure dpi.
        seed: seed of the procedural clip.
    """

    frames: int = 60
    repeats: int = 3
    panel_size: int = 320
    dpi: int = 80
    seed: int = 0


def benchmark_clip(frames: int, seed: int) -> tuple[np.ndarray, Skeleton]:
    """A person-shaped moving clip float32 ``[frames, 20, 3]`` and its skeleton (kinect_v1)."""
    dataset = generate_procedural_dataset(seed=seed, clips_per_class=1, num_subjects=2, num_test_subjects=1,
                                         min_frames=frames, max_frames=frames)
    index = int(np.flatnonzero(dataset.labels == CLASS_NAMES.index("walk_in_place"))[0])
    return dataset.clips[index], dataset.skeleton


def run_suite(config: SuiteConfig) -> dict[str, object]:
    """Time rendering the clip to MP4 and to GIF; check the files hold every frame."""
    clip, skeleton = benchmark_clip(config.frames, config.seed)
    view = View(panel_size=config.panel_size, dpi=config.dpi)
    results: dict[str, object] = {"frames": config.frames, "joints": int(clip.shape[1]), "skeleton": skeleton.name}
    with tempfile.TemporaryDirectory() as folder:
        for suffix in ("mp4", "gif"):
            path = Path(folder) / f"clip.{suffix}"
            seconds = []
            for _ in range(config.repeats + 1):
                start = time.perf_counter()
                render_video(clip, skeleton, path, fps=30.0, titles=["walk_in_place\nbenchmark"], view=view)
                seconds.append(time.perf_counter() - start)
            reader = imageio.get_reader(path, format="FFMPEG" if suffix == "mp4" else "GIF")
            first = reader.get_data(0)
            frames_in_file = reader.count_frames() if suffix == "mp4" else len(reader)
            reader.close()
            results[suffix] = {
                "seconds_median": statistics.median(seconds[1:]),
                "seconds": seconds[1:],
                "warmup_seconds": seconds[0],
                "frames_per_second": config.frames / statistics.median(seconds[1:]),
                "frames_in_file": int(frames_in_file),
                "frame_size": [int(first.shape[1]), int(first.shape[0])],
                "file_bytes": path.stat().st_size,
            }
    return results

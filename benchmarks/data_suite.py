"""The ``data`` benchmark: how fast NW-UCLA is read and how fast its archive loads.

Timings: one warm-up, then the median of repeated runs. The warm-up
read keeps every clip, so the suite also reports which clips ``min_frames`` drops, per
class and per view.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdm import ASSETS_DIR
from mdm.data.archive import read_archive, write_archive
from mdm.data.dataset import MotionDataset
from mdm.data.readers import DEFAULT_MIN_FRAMES, drop_short_clips, read_dataset


@dataclass
class SuiteConfig:
    """Options of the data suite.

    Attributes:
        data_dir: the NW-UCLA ``all_sqe`` folder; empty means ``$NW_UCLA_DIR`` if set, else
            ``datasets/NW-UCLA/all_sqe`` in the checkout.
        read_repeats: timed reads of the whole folder (after one warm-up read).
        load_repeats: timed loads of the converted archive (after one warm-up load).
        min_frames: the ``read_dataset`` option whose effect is counted.
    """

    data_dir: str = ""
    read_repeats: int = 3
    load_repeats: int = 5
    min_frames: int = DEFAULT_MIN_FRAMES


def default_nw_ucla_dir() -> Path:
    """``$NW_UCLA_DIR``, else ``datasets/NW-UCLA/all_sqe`` relative to the checkout."""
    if os.environ.get("NW_UCLA_DIR"):
        return Path(os.environ["NW_UCLA_DIR"])
    return ASSETS_DIR.parent / "datasets" / "NW-UCLA" / "all_sqe"


def _timed(function: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def _kept_dropped(keys: np.ndarray, kept: np.ndarray, names: dict[int, str]) -> dict[str, dict[str, int]]:
    """``{name: {"kept": n, "dropped": m}}`` for each key value."""
    return {names[key]: {"kept": int(np.sum(kept & (keys == key))), "dropped": int(np.sum(~kept & (keys == key)))}
            for key in names}


def count_kept_dropped(dataset: MotionDataset, min_frames: int) -> dict[str, object]:
    """Clips kept and dropped by ``min_frames``, in total, per class and per view."""
    kept = dataset.lengths >= min_frames
    views = {int(v): str(v) for v in np.unique(dataset.views)}
    return {
        "kept": int(kept.sum()),
        "dropped": int((~kept).sum()),
        "dropped_ids": [clip_id for clip_id, k in zip(dataset.clip_ids, kept) if not k],
        "per_class": _kept_dropped(dataset.labels, kept, dict(enumerate(dataset.class_names))),
        "per_view": _kept_dropped(dataset.views, kept, views),
    }


def run_suite(config: SuiteConfig) -> dict[str, object]:
    """Time reading NW-UCLA and loading its archive; count what ``min_frames`` drops."""
    data_dir = Path(config.data_dir) if config.data_dir else default_nw_ucla_dir()
    every_clip = read_dataset("nw-ucla", data_dir, min_frames=1)
    read_seconds = _timed(lambda: read_dataset("nw-ucla", data_dir, min_frames=config.min_frames), config.read_repeats)
    kept = drop_short_clips(every_clip, config.min_frames)
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "nw_ucla.npz"
        write_seconds = _timed(lambda: write_archive(kept, archive), 1)[0]
        read_archive(archive)
        load_seconds = _timed(lambda: read_archive(archive), config.load_repeats)
        archive_bytes = archive.stat().st_size
    return {
        "data_dir": str(data_dir),
        "clips_in_folder": len(every_clip),
        "frames_in_folder": int(every_clip.lengths.sum()),
        "read_folder_seconds_median": statistics.median(read_seconds),
        "read_folder_seconds": read_seconds,
        "archive_bytes": archive_bytes,
        "archive_write_seconds": write_seconds,
        "archive_load_seconds_median": statistics.median(load_seconds),
        "archive_load_seconds": load_seconds,
        "min_frames": config.min_frames,
        "counts": count_kept_dropped(every_clip, config.min_frames),
    }

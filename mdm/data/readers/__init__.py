"""Readers of real dataset formats. Each ends in a :class:`mdm.data.dataset.MotionDataset`.

``read_dataset(format_name, path)`` is the single entry point; each format lives in its
own module and is imported only when asked for.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path

import numpy as np

from mdm.data.dataset import MotionDataset
from mdm.errors import ConfigError

logger = logging.getLogger("mdm.data")

READERS: dict[str, str] = {
    "nw-ucla": "mdm.data.readers.nw_ucla:read_nw_ucla",
    "kard": "mdm.data.readers.kard:read_kard",
    "bandai-namco": "mdm.data.readers.bandai_namco:read_bandai_namco",
    "bvh": "mdm.data.readers.bvh:read_bvh_files",
    "humanact12": "mdm.data.readers.humanact12:read_humanact12",
    "humanact12poses": "mdm.data.readers.smpl_pickles:read_humanact12poses",
    "ntu13": "mdm.data.readers.smpl_pickles:read_ntu13",
    "ntu-skeleton": "mdm.data.readers.ntu_skeleton:read_ntu_skeleton",
    "pyskl": "mdm.data.readers.pyskl:read_pyskl",
    "archive": "mdm.data.archive:read_archive",
}
"""Format name -> ``module:function`` taking ``(path, **options)`` and returning a MotionDataset."""

DEFAULT_MIN_FRAMES = 2
"""Clips shorter than this are dropped by :func:`read_dataset`. Two frames is the least
that holds any motion: a one-frame clip is a single pose with no velocity, which neither a
recognizer nor a motion model can learn an action from. The default drops nothing else, so
published protocols keep their clip counts up to such degenerate clips: NW-UCLA has two,
``a02_s09_e04_v02`` and ``a02_s09_e04_v03``, so its cross-view test view keeps 463 of its
464 clips. Pass ``min_frames=1`` to keep every clip."""


def _check_min_frames(min_frames: int) -> None:
    if isinstance(min_frames, bool) or not isinstance(min_frames, int) or min_frames < 1:
        raise ConfigError(f"min_frames must be an integer >= 1, got {min_frames!r}")


def drop_short_clips(dataset: MotionDataset, min_frames: int) -> MotionDataset:
    """The clips with at least ``min_frames`` frames; any drop is logged as one warning line."""
    _check_min_frames(min_frames)
    keep = dataset.lengths >= min_frames
    if keep.all():
        return dataset
    dropped = [clip_id for clip_id, kept in zip(dataset.clip_ids, keep) if not kept]
    logger.warning("dropped %d clip(s) shorter than %d frames (%s): %s",
                   len(dropped), min_frames, dataset.source, ", ".join(dropped))
    return dataset.subset(np.flatnonzero(keep))


def read_dataset(format_name: str, path: str | Path, min_frames: int = DEFAULT_MIN_FRAMES,
                 **options: object) -> MotionDataset:
    """Read a dataset of the named format (one of :data:`READERS`).

    Args:
        format_name: a key of :data:`READERS`.
        path: the file or folder to read.
        min_frames: clips shorter than this are dropped (see :data:`DEFAULT_MIN_FRAMES`),
            with one warning on the ``mdm.data`` logger naming them; 1 keeps every clip.
        options: keyword options of that format's reader (e.g. ``protocol`` for
            ``ntu-skeleton``); an option the reader does not take is refused.

    Raises:
        ConfigError: an unknown format, an option the reader does not take, a bad min_frames.
        DataFormatError: the data breaks its format (from the reader).
    """
    if format_name not in READERS:
        raise ConfigError(f"unknown dataset format {format_name!r}; known formats: {', '.join(READERS)}")
    _check_min_frames(min_frames)
    module_name, function_name = READERS[format_name].split(":")
    reader = getattr(importlib.import_module(module_name), function_name)
    try:
        inspect.signature(reader).bind(Path(path), **options)
    except TypeError:
        taken = list(inspect.signature(reader).parameters)[1:]
        raise ConfigError(
            f"format {format_name!r} does not take option(s) {sorted(options)}; "
            f"its options: {', '.join(taken) or 'none'}"
        ) from None
    return drop_short_clips(reader(Path(path), **options), min_frames)

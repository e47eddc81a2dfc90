"""Readers of real dataset formats. Each ends in a :class:`mdm.data.dataset.MotionDataset`.

``read_dataset(format_name, path)`` is the single entry point; each format lives in its
own module and is imported only when asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from mdm.data.dataset import MotionDataset
from mdm.errors import ConfigError

READERS: dict[str, str] = {
    "nw-ucla": "mdm.data.readers.nw_ucla:read_nw_ucla",
    "humanact12": "mdm.data.readers.humanact12:read_humanact12",
    "humanact12poses": "mdm.data.readers.smpl_pickles:read_humanact12poses",
    "ntu13": "mdm.data.readers.smpl_pickles:read_ntu13",
    "ntu-skeleton": "mdm.data.readers.ntu_skeleton:read_ntu_skeleton",
    "archive": "mdm.data.archive:read_archive",
}
"""Format name -> ``module:function`` taking ``(path, **options)`` and returning a MotionDataset."""


def read_dataset(format_name: str, path: str | Path, **options: object) -> MotionDataset:
    """Read a dataset of the named format (one of :data:`READERS`)."""
    if format_name not in READERS:
        raise ConfigError(f"unknown dataset format {format_name!r}; known formats: {', '.join(READERS)}")
    module_name, function_name = READERS[format_name].split(":")
    reader = getattr(importlib.import_module(module_name), function_name)
    return reader(Path(path), **options)

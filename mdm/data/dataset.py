"""The one in-memory dataset type every reader ends in."""

from __future__ import annotations

import logging

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from mdm.skeleton import Skeleton

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class MotionDataset:
    """Labelled skeleton clips of one skeleton, as read from any format.

    Attributes:
        clips: one float32 array per clip, ``[T, J, 3]`` (one person) or ``[T, M, J, 3]``
            (M persons, absent person all zeros); every clip has the same rank, J and M.
        labels: int64 ``[N]``, class index in ``[0, K)``.
        class_names: ``K`` unique names.
        skeleton: the skeleton of every clip.
        subjects: int64 ``[N]`` performer ids, -1 where unknown (None on input: all unknown).
        views: int64 ``[N]`` camera ids, -1 where unknown (None on input: all unknown).
        clip_ids: ``N`` unique clip names (None on input: numbered).
        split: unicode ``[N]`` of ``train``/``val``/``test``, or None when the data has none.
        fps: frame rate, or None when unknown.
        source: free text saying where the data came from.
        rotations: optional per-clip SMPL parameters for rotation-based data, float32
            ``[T, J, 6]`` (6D rotation of each joint, root first); None for position data.
        translations: optional per-clip root translation float32 ``[T, 3]``, with ``rotations``.
        styles: optional int64 ``[N]`` second label of each clip, in ``[0, S)`` (for example the
            performance style of a motion-capture take), with ``style_names``; None where the data has none.
        style_names: ``S`` unique names of the second label, or None.
    """

    clips: list[np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    skeleton: Skeleton
    subjects: np.ndarray | None = None
    views: np.ndarray | None = None
    clip_ids: list[str] | None = None
    split: np.ndarray | None = None
    fps: float | None = None
    source: str = ""
    rotations: list[np.ndarray] | None = None
    translations: list[np.ndarray] | None = None
    styles: np.ndarray | None = None
    style_names: list[str] | None = None

    def __post_init__(self) -> None:
        n = len(self.clips)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(n)
        self.class_names = [str(name) for name in self.class_names]
        self.subjects = np.full(n, -1, np.int64) if self.subjects is None else np.asarray(self.subjects, np.int64)
        self.views = np.full(n, -1, np.int64) if self.views is None else np.asarray(self.views, np.int64)
        if self.clip_ids is None:
            self.clip_ids = [f"clip_{i:06d}" for i in range(n)]
        self.clip_ids = [str(c) for c in self.clip_ids]
        if self.split is not None:
            self.split = np.asarray(self.split, dtype=str)
        if self.styles is not None:
            self.styles = np.asarray(self.styles, dtype=np.int64).reshape(-1)
        if self.style_names is not None:
            self.style_names = [str(name) for name in self.style_names]
        self._check()

    def _check(self) -> None:
        """Internal consistency; readers check the user's files before building a dataset."""
        n = len(self.clips)
        for name, values in (("labels", self.labels), ("subjects", self.subjects), ("views", self.views),
                             ("clip_ids", self.clip_ids)):
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries for {n} clips")
        if self.split is not None and len(self.split) != n:
            raise ValueError(f"split has {len(self.split)} entries for {n} clips")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(f"labels must lie in [0, {len(self.class_names)})")
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError("class names must be unique")
        if (self.styles is None) != (self.style_names is None):
            raise ValueError("styles and style_names come together")
        if self.styles is not None:
            if len(self.styles) != n:
                raise ValueError(f"styles has {len(self.styles)} entries for {n} clips")
            if n and (self.styles.min() < 0 or self.styles.max() >= len(self.style_names)):
                raise ValueError(f"styles must lie in [0, {len(self.style_names)})")
            if len(set(self.style_names)) != len(self.style_names):
                raise ValueError("style names must be unique")
        ranks = {clip.ndim for clip in self.clips}
        if len(ranks) > 1 or (ranks and ranks.pop() not in (3, 4)):
            raise ValueError("clips must all be [T, J, 3] or all be [T, M, J, 3]")
        if any(clip.shape[-2:] != (self.skeleton.num_joints, 3) for clip in self.clips):
            raise ValueError(f"every clip must end in [{self.skeleton.num_joints}, 3] (skeleton {self.skeleton.name})")

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def lengths(self) -> np.ndarray:
        """int64 ``[N]`` frames per clip."""
        return np.array([clip.shape[0] for clip in self.clips], dtype=np.int64)

    @property
    def num_persons(self) -> int:
        """M for multi-person clips ``[T, M, J, 3]``, 1 for ``[T, J, 3]``."""
        return self.clips[0].shape[1] if self.clips and self.clips[0].ndim == 4 else 1

    @property
    def is_multi_person(self) -> bool:
        return bool(self.clips) and self.clips[0].ndim == 4

    def subset(self, indices: np.ndarray | list[int]) -> MotionDataset:
        """A new dataset holding the clips at ``indices`` (arrays are shared, not copied)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        pick = [int(i) for i in idx]
        return replace(
            self,
            clips=[self.clips[i] for i in pick],
            labels=self.labels[idx],
            subjects=self.subjects[idx],
            views=self.views[idx],
            clip_ids=[self.clip_ids[i] for i in pick],
            split=None if self.split is None else self.split[idx],
            rotations=None if self.rotations is None else [self.rotations[i] for i in pick],
            translations=None if self.translations is None else [self.translations[i] for i in pick],
            styles=None if self.styles is None else self.styles[idx],
        )

    def split_subset(self, name: str) -> MotionDataset:
        """The clips whose ``split`` is ``name`` (``train``, ``val`` or ``test``)."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLIT_NAMES}")
        if self.split is None:
            raise ValueError("this dataset has no split")
        return self.subset(np.flatnonzero(self.split == name))

    def labelled_by_style(self) -> MotionDataset:
        """The same clips with the two labels exchanged: the style is the class, the class the style.

        Raises:
            ValueError: the dataset has no styles.
        """
        if self.styles is None:
            raise ValueError("this dataset has no styles")
        return replace(self, labels=self.styles, class_names=self.style_names,
                       styles=self.labels, style_names=self.class_names)

    def class_counts(self) -> dict[str, int]:
        """Number of clips of each class, by class name."""
        counts = Counter(self.labels.tolist())
        return {name: counts.get(k, 0) for k, name in enumerate(self.class_names)}

    def summary(self) -> str:
        """A few lines describing the dataset, for logs."""
        lengths = self.lengths
        lines = [
            f"{len(self)} clips, {self.num_classes} classes, skeleton {self.skeleton.name} "
            f"({self.skeleton.num_joints} joints), persons {self.num_persons}",
        ]
        if len(self):
            lines.append(f"frames per clip: min {lengths.min()}, median {int(np.median(lengths))}, max {lengths.max()}")
        if self.split is not None:
            counts = Counter(self.split.tolist())
            lines.append("split: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in SPLIT_NAMES))
        return "\n".join(lines)


def single_person(dataset: MotionDataset) -> MotionDataset:
    """The main (first) person of multi-person clips; one-person datasets unchanged."""
    if not dataset.is_multi_person:
        return dataset
    logging.getLogger("mdm.data").warning("the generator models one person: keeping the first person of each %d-person clip",
                   dataset.num_persons)
    return replace(dataset, clips=[clip[:, 0] for clip in dataset.clips])

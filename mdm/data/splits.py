"""Carving a validation split out of the training clips, never touching the test clips.

Validation clips must have no twin in training, so clips are moved in groups: whole
subjects when every training clip's subject is known and there are enough subjects for one to
be no more than the validation share (a subject-disjoint split), else whole performances (clips whose ids differ only by a trailing view tag such as ``_v01``, e.g.
NW-UCLA ``a01_s01_e00_v01``), else single clips. Within that constraint the split is
stratified by class and seeded.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Literal

import numpy as np

from mdm.data.dataset import SPLIT_NAMES, MotionDataset
from mdm.errors import ConfigError, UserError

VIEW_TAG = re.compile(r"_v\d+$")
"""A trailing view tag of a clip id, e.g. ``_v01`` in ``a01_s01_e00_v01``."""

Grouping = Literal["subject", "performance", "clip"]
_SUBJECT_TRIALS = 256
SUBJECT_TOLERANCE = 0.1
"""Subject sets whose error is within this share of ``fraction`` of the best are equally good."""


def _require_split(dataset: MotionDataset) -> np.ndarray:
    if dataset.split is None:
        raise UserError(
            f"the dataset ({dataset.source or 'no source given'}) has no train/test split; "
            "assign one before carving a validation split"
        )
    return dataset.split


def split_counts(dataset: MotionDataset) -> dict[str, int]:
    """Number of clips in each split, ``{"train": ..., "val": ..., "test": ...}``."""
    split = _require_split(dataset)
    return {name: int(np.sum(split == name)) for name in SPLIT_NAMES}


def performance_id(clip_id: str) -> str:
    """A clip id without its trailing view tag: ``a01_s01_e00_v01`` -> ``a01_s01_e00``."""
    return VIEW_TAG.sub("", clip_id)


def performance_groups(clip_ids: list[str]) -> np.ndarray:
    """int ``[N]``: the same number for clips of one performance (:func:`performance_id`), from 0."""
    return np.unique([performance_id(clip_id) for clip_id in clip_ids], return_inverse=True)[1].ravel()


def validation_grouping(dataset: MotionDataset, fraction: float = 0.1) -> Grouping:
    """How :func:`carve_validation_split` groups the training clips of ``dataset``.

    ``subject`` when every training clip has a known subject and there are at least
    ``1 / fraction`` subjects (with fewer, even one subject would take well over ``fraction`` of
    the training clips: one of KARD's five training subjects is a fifth of them); else
    ``performance`` when some training clip id carries a view tag; else ``clip``.
    """
    train = np.flatnonzero(_require_split(dataset) == "train")
    subjects = dataset.subjects[train]
    if len(train) and np.all(subjects >= 0) and len(np.unique(subjects)) * fraction >= 1.0 - 1e-9:
        return "subject"
    if any(VIEW_TAG.search(dataset.clip_ids[i]) for i in train):
        return "performance"
    return "clip"


def _choose_subjects(
    subjects: np.ndarray, labels: np.ndarray, num_classes: int, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Subjects for validation: every class in both parts first, then shares close to ``fraction``.

    Candidates are prefixes of seeded random orders of the subjects. The error of a
    candidate is ``|share - fraction|`` plus the mean over classes of ``|share_k - fraction|``;
    the seed picks uniformly among the distinct candidates that miss the fewest classes and
    whose error is within ``SUBJECT_TOLERANCE * fraction`` of the smallest.
    """
    ids, inverse = np.unique(subjects, return_inverse=True)
    counts = np.zeros((len(ids), num_classes), dtype=np.int64)
    np.add.at(counts, (inverse, labels), 1)
    per_class = counts.sum(axis=0)
    has_class = per_class > 0
    orders = np.stack([rng.permutation(len(ids)) for _ in range(_SUBJECT_TRIALS)])
    in_val = np.cumsum(counts[orders], axis=1)[:, :-1]
    missing = ((in_val == 0) & has_class).sum(-1) + ((in_val == per_class) & has_class).sum(-1)
    class_share = in_val[..., has_class] / per_class[has_class]
    share = in_val.sum(-1) / per_class.sum()
    error = np.abs(share - fraction) + np.abs(class_share - fraction).mean(-1)
    fewest = missing == missing.min()
    good = fewest & (error <= error[fewest].min() + SUBJECT_TOLERANCE * fraction)
    candidates = sorted({tuple(sorted(orders[trial, : prefix + 1])) for trial, prefix in zip(*np.nonzero(good))})
    return ids[list(candidates[int(rng.integers(len(candidates)))])]


def _choose_groups(
    groups: list[str], labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> set[str]:
    """Groups for validation, chosen class by class (a group's class is that of its first clip).

    Each class's groups are shuffled with ``rng`` and cut where the validation count comes
    closest to ``fraction`` of the class's clips, keeping at least one group on each side;
    a class with a single group stays in training.
    """
    group_names = sorted(set(groups))
    size = {name: 0 for name in group_names}
    group_label: dict[str, int] = {}
    for name, label in zip(groups, labels.tolist()):
        size[name] += 1
        group_label.setdefault(name, label)
    chosen: set[str] = set()
    for label in sorted(set(group_label.values())):
        members = [name for name in group_names if group_label[name] == label]
        if len(members) < 2:
            continue
        order = [members[i] for i in rng.permutation(len(members))]
        cumulative = np.cumsum([size[name] for name in order])[:-1]
        target = fraction * sum(size[name] for name in members)
        cut = int(np.argmin(np.abs(cumulative - target))) + 1
        chosen.update(order[:cut])
    return chosen


def carve_validation_split(dataset: MotionDataset, fraction: float = 0.1, seed: int = 0) -> MotionDataset:
    """A copy of ``dataset`` with about ``fraction`` of its ``train`` clips marked ``val``.

    Test clips are never touched. Clips move in groups (see :func:`validation_grouping`):
    whole subjects, chosen so every class is present in validation and in training and the
    validation share is close to ``fraction`` overall and per class; else whole
    performances or single clips, stratified by class. The same seed gives the same split.
    The copy shares the clip arrays of ``dataset``.

    Raises:
        UserError: the dataset has no split, no training clips, or already has ``val`` clips.
        ConfigError: ``fraction`` is not in ``(0, 1)``.
    """
    split = _require_split(dataset)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must lie in (0, 1), got {fraction}")
    counts = split_counts(dataset)
    if counts["val"]:
        raise UserError(f"the dataset already has {counts['val']} validation clips; not carving another split")
    train = np.flatnonzero(split == "train")
    if len(train) < 2:
        raise UserError(f"the dataset has {len(train)} training clips; need at least 2 to carve a validation split")
    rng = np.random.default_rng(seed)
    labels = dataset.labels[train]
    grouping = validation_grouping(dataset, fraction)
    if grouping == "subject":
        subjects = dataset.subjects[train]
        to_val = np.isin(subjects, _choose_subjects(subjects, labels, dataset.num_classes, fraction, rng))
    else:
        ids = [dataset.clip_ids[i] for i in train]
        groups = [performance_id(c) for c in ids] if grouping == "performance" else ids
        chosen = _choose_groups(groups, labels, fraction, rng)
        to_val = np.array([g in chosen for g in groups], dtype=bool)
    new_split = split.astype("<U5")
    new_split[train[to_val]] = "val"
    return replace(dataset, clips=list(dataset.clips), split=new_split)


def keep_training_share(dataset: MotionDataset, fraction: float, seed: int = 0) -> MotionDataset:
    """``dataset`` with only about ``fraction`` of its ``train`` clips: a low-data setting.

    Whole performances are kept or left out together (both views of a performance, see
    :func:`performance_id`; single clips where ids carry no view tag), chosen class by class
    with ``seed`` as :func:`carve_validation_split` chooses validation groups, so every class
    keeps at least one performance. Validation and test clips are all kept.

    Raises:
        UserError: the dataset has no split.
        ConfigError: ``fraction`` is not in ``(0, 1)``.
    """
    split = _require_split(dataset)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"training share must lie in (0, 1), got {fraction}")
    train = np.flatnonzero(split == "train")
    groups = [performance_id(dataset.clip_ids[i]) for i in train]
    labels = dataset.labels[train]
    kept_groups = _choose_groups(groups, labels, fraction, np.random.default_rng(seed))
    for label in np.unique(labels):
        class_groups = {group for group, of in zip(groups, labels) if of == label}
        if len(class_groups) == 1:
            kept_groups |= class_groups
    kept_train = {int(i) for i, group in zip(train, groups) if group in kept_groups}
    keep = [i for i in range(len(dataset)) if split[i] != "train" or i in kept_train]
    return dataset.subset(keep)


def view_fold(dataset: MotionDataset, train_views: list[int], test_views: list[int]) -> MotionDataset:
    """A cross-view fold: the clips of ``train_views`` become ``train``, those of ``test_views``
    become ``test``, and clips of any other view are left out.

    Made for choosing a recipe without the real test view, e.g. NW-UCLA's training views 1 and 2
    as a 1 -> 2 fold (validation is carved from the fold's training clips later, as usual).

    Raises:
        ConfigError: a view is in both lists, or either list is empty.
        UserError: a listed view has no clips.
    """
    if not train_views or not test_views:
        raise ConfigError("a view fold needs at least one training view and one test view")
    shared = sorted(set(train_views) & set(test_views))
    if shared:
        raise ConfigError(f"view(s) {shared} cannot be both training and test views")
    present = set(dataset.views.tolist())
    missing = sorted((set(train_views) | set(test_views)) - present)
    if missing:
        raise UserError(f"the dataset has no clips of view(s) {missing}; its views: {sorted(present)}")
    keep = np.flatnonzero(np.isin(dataset.views, train_views + test_views))
    fold = dataset.subset(keep)
    split = np.where(np.isin(fold.views, train_views), "train", "test").astype("<U5")
    return replace(fold, split=split)

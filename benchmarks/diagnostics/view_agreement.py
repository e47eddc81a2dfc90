"""DIAGNOSTIC: how well the recognizers' view normalisation agrees across cameras, per view reference.

    python benchmarks/diagnostics/view_agreement.py --dataset nw-ucla --data-root datasets/NW-UCLA/all_sqe
    python benchmarks/diagnostics/view_agreement.py --dataset archive --data-root nw_ucla.npz --json out.json

Multi-view datasets (NW-UCLA, NTU RGB+D) film each performance with several cameras at once, so
after a good view normalisation the clips of one performance should face the same way. For every
two clips of one performance (clip ids that differ only by a view tag such as ``_v01``) in the
chosen split (training by default: the test view stays out), both put through the recognition
pipeline's evaluation transform, :func:`residual_yaw_deg` is the turn about the vertical axis that
still separates them; one line per ``view_reference`` (``first_frame``, ``clip``).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

import numpy as np

from mdm.cli import run_main
from mdm.data.dataset import MotionDataset
from mdm.data.sources import DATASET_NAMES, DataConfig, load_training_data
from mdm.data.splits import performance_groups
from mdm.data.transforms import VIEW_REFERENCES, ClipPipelineConfig, prepare_clip, recognition_pipeline
from mdm.errors import ConfigError


def residual_yaw_deg(first: np.ndarray, second: np.ndarray, up_axis: int) -> float:
    """Degrees in ``(-180, 180]``: the rotation about the vertical axis that best takes the poses of
    ``first`` onto those of ``second`` (least squares over every frame's joints relative to that
    frame's joint 0).

    Args:
        first, second: ``[T, J, 3]`` clips of equal shape (one person).
    """
    if first.shape != second.shape or first.ndim != 3:
        raise ValueError(f"expected two [T, J, 3] clips of one shape, got {list(first.shape)} and {list(second.shape)}")
    i, j = (up_axis + 1) % 3, (up_axis + 2) % 3
    a = (first - first[:, :1])[..., [i, j]].reshape(-1, 2).astype(np.float64)
    b = (second - second[:, :1])[..., [i, j]].reshape(-1, 2).astype(np.float64)
    cross = float(np.sum(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]))
    return float(np.degrees(np.arctan2(cross, float(np.sum(a * b)))))


@dataclass
class ViewAgreement:
    """Residual yaw of every two views of one performance (:func:`view_agreement`)."""

    yaw_deg: np.ndarray
    """float ``[P]``, one per pair of clips."""
    labels: np.ndarray
    """int64 ``[P]``, the class of each pair."""
    class_names: list[str]

    def summary(self) -> dict[str, object]:
        """Pairs, median and root-mean-square of ``|yaw|``, shares within 10 and 30 degrees, per-class medians."""
        size = np.abs(self.yaw_deg)
        return {
            "pairs": int(len(size)),
            "median_deg": float(np.median(size)),
            "rms_deg": float(np.sqrt(np.mean(size ** 2))),
            "within_10_deg": float(np.mean(size <= 10)),
            "within_30_deg": float(np.mean(size <= 30)),
            "median_deg_per_class": {name: float(np.median(size[self.labels == k]))
                                     for k, name in enumerate(self.class_names) if np.any(self.labels == k)},
        }


def view_agreement(dataset: MotionDataset, pipeline: ClipPipelineConfig, split: str = "train") -> ViewAgreement:
    """Residual yaw between the normalised clips of every two views of one performance in ``split``.

    Raises:
        ConfigError: no two clips of ``split`` show one performance, or the data has several persons.
    """
    if dataset.num_persons != 1:
        raise ConfigError("view agreement compares one-person clips; this dataset has several persons per clip")
    chosen = np.flatnonzero(dataset.split == split) if dataset.split is not None else np.arange(len(dataset.labels))
    members: defaultdict[int, list[int]] = defaultdict(list)
    for index, group in zip(chosen, performance_groups([dataset.clip_ids[i] for i in chosen])):
        members[int(group)].append(int(index))
    pairs = [pair for clips in members.values() for pair in combinations(clips, 2)]
    if not pairs:
        raise ConfigError(f"no two {split} clips show one performance (clip ids that differ only by a view tag "
                          "such as _v01), so there is nothing to compare")
    no_draws = np.random.default_rng(0)  # evaluation (train=False) never draws from it
    prepared = {index: prepare_clip(dataset.clips[index], dataset.skeleton, pipeline, False, no_draws)[0]
                for index in {i for pair in pairs for i in pair}}
    up = dataset.skeleton.up_axis
    yaw = np.array([residual_yaw_deg(prepared[a], prepared[b], up) for a, b in pairs])
    return ViewAgreement(yaw_deg=yaw, labels=dataset.labels[[a for a, _ in pairs]], class_names=list(dataset.class_names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    parser.add_argument("--data-root", help="the dataset's file or folder (an .npz for archive)")
    parser.add_argument("--split", default="train", choices=["train", "val", "test"],
                        help="whose clips to pair (default train: keep the test view out)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    dataset = load_training_data(DataConfig(name=args.dataset, root=args.data_root))
    results = {reference: view_agreement(dataset, replace(recognition_pipeline(), view_reference=reference),
                                         args.split).summary()
               for reference in VIEW_REFERENCES}
    print(f"{'view reference':15s} {'pairs':>5s} {'median':>7s} {'rms':>6s} {'<=10 deg':>8s} {'<=30 deg':>8s}")
    for reference, summary in results.items():
        print(f"{reference:15s} {summary['pairs']:5d} {summary['median_deg']:6.1f}° {summary['rms_deg']:5.1f}° "
              f"{summary['within_10_deg']:8.0%} {summary['within_30_deg']:8.0%}")
    print("median |yaw| per class: " + "; ".join(
        f"{name} " + "/".join(f"{results[r]['median_deg_per_class'][name]:.0f}" for r in VIEW_REFERENCES)
        for name in results[VIEW_REFERENCES[0]]["median_deg_per_class"]) + f" ({' / '.join(VIEW_REFERENCES)})")
    if args.json:
        args.json.write_text(json.dumps({"dataset": args.dataset, "data_root": args.data_root, "split": args.split,
                                         "references": results}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    run_main(main)

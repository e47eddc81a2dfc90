"""DIAGNOSTIC: which rule for a stream ensemble's fusion weights does best on held-out clips.

    python benchmarks/diagnostics/ensemble_weighting.py ENS_SEED0 ENS_SEED1 ENS_SEED2 [--json FILE]

Each argument is a finished ensemble folder (``run/train_ensemble.py``); its members' saved scores
are fused three ways and scored on the folder's test split:

- ``validation``: the weights :func:`imdm.ensemble.choose_weights` picks on the validation clips
  (what the ensemble keeps);
- ``equal``: every stream weight 1;
- ``2:2:1:1``: joint and bone 2, joint motion and bone motion 1 (the pyskl convention).

Meant for folders whose test split may choose (a within-training-view fold's test view): read on a
benchmark's real test split it would be choosing on test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from imdm.ensemble import choose_weights, fuse_scores, read_ensemble_spec
from imdm.training.ensemble import member_scores
from mdm.cli import run_main

CONVENTION_WEIGHTS = {"j": 2.0, "b": 2.0, "jm": 1.0, "bm": 1.0}
"""The ``2:2:1:1`` rule's weight per stream code."""
RULES = ("validation", "equal", "2:2:1:1")


def rule_weights(rule: str, streams: list[str], val_probabilities: np.ndarray, val_labels: np.ndarray) -> list[float]:
    """The fusion weights of ``rule`` for members ``streams`` with validation probabilities ``[S, N, K]``."""
    if rule == "validation":
        return choose_weights(val_probabilities, val_labels)
    if rule == "equal":
        return [1.0] * len(streams)
    return [CONVENTION_WEIGHTS[code] for code in streams]


def weighting_report(folder: str | Path) -> dict[str, dict[str, object]]:
    """``{rule: {"weights": [S], "test_top1": float}}`` for one finished ensemble folder."""
    folder = Path(folder)
    spec = read_ensemble_spec(folder)
    probabilities, labels = member_scores(folder, spec)
    report = {}
    for rule in RULES:
        weights = rule_weights(rule, spec.streams, probabilities["val"], labels["val"])
        fused = fuse_scores(probabilities["test"], weights)
        report[rule] = {"weights": weights, "test_top1": float(np.mean(fused.argmax(1) == labels["test"]))}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ensembles", nargs="+", help="finished ensemble folders (one per seed)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    reports = {folder: weighting_report(folder) for folder in args.ensembles}
    for folder, report in reports.items():
        print(folder)
        for rule, row in report.items():
            print(f"  {rule:<11} weights {row['weights']}  test top-1 {row['test_top1']:.2%}")
    top1 = {rule: np.array([report[rule]["test_top1"] for report in reports.values()]) * 100 for rule in RULES}
    print("mean over folders (test top-1, paired difference from the validation rule):")
    for rule in RULES:
        difference = top1[rule] - top1["validation"]
        print(f"  {rule:<11} {top1[rule].mean():.2f} ± {top1[rule].std(ddof=min(1, len(difference) - 1)):.2f}%"
              f"  {difference.mean():+.2f} ± {difference.std(ddof=min(1, len(difference) - 1)):.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)

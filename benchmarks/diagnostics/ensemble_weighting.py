"""DIAGNOSTIC: which rule for a stream ensemble's fusion weights does best on held-out clips.

    python benchmarks/diagnostics/ensemble_weighting.py ENS_SEED0 ENS_SEED1 ENS_SEED2 [--json FILE]

Each argument is a finished ensemble folder (``run/train_ensemble.py``); its members' saved scores
are fused three ways and scored on the folder's test split:

- ``validation``: the grid weighting that scores best on the validation clips (:func:`grid_weights`;
  what ensembles kept until this comparison retired it);
- ``equal``: every stream weight 1 (what ensembles keep);
- ``2:2:1:1``: joint and bone 2, joint motion and bone motion 1 (the pyskl convention).

Meant for folders whose test split may choose (a within-training-view fold's test view): read on a
benchmark's real test split it would be choosing on test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from imdm.ensemble import fuse_scores, read_ensemble_spec
from imdm.training.ensemble import member_scores
from mdm.cli import run_main

# benchmarks/ is not installed: the repository root on the path lets the shared diagnostic helpers import.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.diagnostics.paired import print_paired  # noqa: E402

CONVENTION_WEIGHTS = {"j": 2.0, "b": 2.0, "jm": 1.0, "bm": 1.0}
"""The ``2:2:1:1`` rule's weight per stream code."""
RULES = ("validation", "equal", "2:2:1:1")
WEIGHT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
"""Candidate weights of each stream for :func:`grid_weights`."""
MIN_GAIN_CLIPS = 2
"""Validation clips a grid weighting must win over equal weights to replace them."""


def grid_weights(probabilities: np.ndarray, labels: np.ndarray) -> list[float]:
    """The :data:`WEIGHT_GRID` weighting that fuses validation probabilities ``[S, N, K]`` best.

    Scored by top-1 on ``labels`` ``[N]``; ties go to the lower mean negative log-likelihood, then
    to the weighting nearest to equal weights. Equal weights stay unless the best weighting
    classifies at least :data:`MIN_GAIN_CLIPS` more validation clips correctly.
    """
    labels = np.asarray(labels)
    equal = [1.0] * probabilities.shape[0]
    equal_correct = int(np.sum(fuse_scores(probabilities, equal).argmax(1) == labels))
    best_key, best = None, None
    for combination in itertools.product(WEIGHT_GRID, repeat=probabilities.shape[0]):
        weights = np.asarray(combination)
        if weights.sum() <= 0:
            continue
        fused = fuse_scores(probabilities, weights)
        top1 = float(np.mean(fused.argmax(1) == labels))
        nll = float(-np.mean(np.log(fused[np.arange(len(labels)), labels] + 1e-12)))
        share = weights / weights.sum()
        key = (-top1, round(nll, 9), float(np.abs(share - 1 / len(share)).sum()))
        if best_key is None or key < best_key:
            best_key, best = key, combination
    assert best_key is not None and best is not None
    if -best_key[0] * len(labels) - equal_correct < MIN_GAIN_CLIPS - 1e-9:
        return equal
    return [float(w) for w in best]


def rule_weights(rule: str, streams: list[str], val_probabilities: np.ndarray, val_labels: np.ndarray) -> list[float]:
    """The fusion weights of ``rule`` for members ``streams`` with validation probabilities ``[S, N, K]``."""
    if rule == "validation":
        return grid_weights(val_probabilities, val_labels)
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
    print_paired({rule: np.array([report[rule]["test_top1"] for report in reports.values()]) * 100 for rule in RULES},
                 "validation")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)

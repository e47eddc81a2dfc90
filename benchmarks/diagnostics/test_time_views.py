"""DIAGNOSTIC: does averaging a stream ensemble over extra views of each test clip classify better.

    python benchmarks/diagnostics/test_time_views.py ENS_SEED0 ENS_SEED1 ENS_SEED2 [--json FILE]

Each argument is a finished ensemble folder (``run/train_ensemble.py``); its dataset is read again
from the folder's ``config.yaml`` (a relative data root from the working directory). Every member
classifies the test clips, after the evaluation pipeline (centred, view-normalised), as they are and
as extra views; its probabilities are averaged over the views, then the members are fused with
equal weights (what ensembles do; folders written before that rule saved other weights, not used here):

- ``none``: the clip alone;
- ``mirror``: the clip and its left-right mirror (lateral coordinate negated, left and right joints
  swapped; measured and not kept);
- ``turns``: the clip turned by each of :data:`imdm.ensemble.TEST_TURNS` about the vertical axis (what
  ensembles do since this comparison);
- ``spread``: each member classifies the clip at one turn of its own (:func:`spread_turns`, in stream order), so the
  ensemble costs what it costs on the clip alone (measured and not kept).

Each member is also scored alone on the same views (``members``: one stream's recognizer as a single
model), which is how the turns were judged for single recognizers.

The comparison was decided on a within-training-view fold's test view; read on a benchmark's real
test split it reports what the views give there, and must not choose.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imdm.bundle import TrainedRecognizer
from imdm.ensemble import TEST_TURNS, EnsembleSpec, TrainedEnsemble, fuse_scores
from imdm.training.ensemble import scored_clips
from mdm.cli import run_main
from mdm.config import from_dict, load_yaml
from mdm.data.dataset import MotionDataset
from mdm.data.sources import DataConfig, load_training_data
from mdm.data.transforms import lateral_axis
from mdm.evaluation.metrics import accuracy
from mdm.skeleton import Skeleton

# benchmarks/ is not installed: the repository root on the path lets the shared diagnostic helpers import.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.diagnostics.paired import print_paired  # noqa: E402

VIEW_SETS = ("none", "mirror", "turns", "spread")


def mirrored(motion: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """``motion`` ``[..., J, 3]`` mirrored left to right: lateral coordinate negated, mirror pairs swapped."""
    out = motion[..., torch.from_numpy(skeleton.mirror_permutation), :].clone()
    out[..., lateral_axis(skeleton.up_axis)] *= -1
    return out


class MirroredInput(nn.Module):
    """A recognizer that classifies the mirror of its input."""

    def __init__(self, model: nn.Module, skeleton: Skeleton) -> None:
        super().__init__()
        self.model = model
        self.skeleton = skeleton

    def forward(self, motion: torch.Tensor) -> object:
        return self.model(mirrored(motion, self.skeleton))


def spread_turns(count: int) -> list[float]:
    """``count`` turns (degrees) evenly spaced over the span of :data:`imdm.ensemble.TEST_TURNS`, one per member."""
    return np.linspace(min(TEST_TURNS), max(TEST_TURNS), count).tolist()


def spread_probabilities(ensemble: TrainedEnsemble, spec: EnsembleSpec, clips: MotionDataset) -> np.ndarray:
    """``[S, N, K]``: each member's probabilities of ``clips`` turned by its own one of :func:`spread_turns`."""
    return np.stack([
        TrainedEnsemble(replace(spec, streams=[stream], folders=[folder], weights=[1.0], turns=[turn]),
                        [member]).member_probabilities(clips)[0]
        for stream, folder, member, turn in zip(spec.streams, spec.folders, ensemble.members,
                                                spread_turns(len(ensemble.members)))])


def view_probabilities(folder: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``{view_set: [S, N, K]}`` member probabilities on the folder's test split and its labels ``[N]``."""
    ensemble = TrainedEnsemble.load(folder)
    data_config = from_dict(DataConfig, load_yaml(folder / "config.yaml")["data"], where=str(folder / "config.yaml"))
    dataset = load_training_data(data_config)
    test = scored_clips(folder, ensemble.spec, dataset, "test")
    alone = replace(ensemble.spec, turns=[0.0], up_axis=test.skeleton.up_axis)
    turns = replace(alone, turns=list(TEST_TURNS))
    mirror = [TrainedRecognizer(m.spec, MirroredInput(m.model, test.skeleton)) for m in ensemble.members]
    none = TrainedEnsemble(alone, ensemble.members).member_probabilities(test)
    return {
        "none": none,
        "mirror": (none + TrainedEnsemble(alone, mirror).member_probabilities(test)) / 2,
        "turns": TrainedEnsemble(turns, ensemble.members).member_probabilities(test),
        "spread": spread_probabilities(ensemble, alone, test),
    }, np.asarray(test.labels)


def view_report(folder: str | Path) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Test top-1 of one finished ensemble folder on each view set: the ensemble's ``{view_set: top-1}`` and
    each member's alone ``{view_set: [S]}`` (members in the ensemble's order)."""
    probabilities, labels = view_probabilities(Path(folder))
    weights = [1.0] * len(probabilities["none"])
    ensemble = {name: accuracy(fuse_scores(probabilities[name], weights), labels) for name in VIEW_SETS}
    members = {name: [accuracy(member, labels) for member in probabilities[name]] for name in VIEW_SETS}
    return ensemble, members


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ensembles", nargs="+", help="finished ensemble folders")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    reports, member_reports = {}, {}
    for folder in args.ensembles:
        reports[folder], member_reports[folder] = view_report(folder)
        print(folder, "  ".join(f"{name} {top1:.2%}" for name, top1 in reports[folder].items()), flush=True)
        for name, top1 in member_reports[folder].items():
            print(f"  members, {name}: " + " / ".join(f"{value:.2%}" for value in top1), flush=True)
    print("ensembles")
    print_paired({name: np.array([report[name] for report in reports.values()]) * 100 for name in VIEW_SETS}, "none")
    print("members alone (every member of every folder)")
    print_paired({name: np.concatenate([report[name] for report in member_reports.values()]) * 100
                  for name in VIEW_SETS}, "none")
    if args.json:
        Path(args.json).write_text(json.dumps({folder: {"ensemble": reports[folder], "members": member_reports[folder]}
                                               for folder in reports}, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)

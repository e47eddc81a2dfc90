"""The ensemble weighting diagnostic (benchmarks/diagnostics): three rules scored on saved member scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.diagnostics.ensemble_weighting import grid_weights, main, weighting_report
from imdm.ensemble import EnsembleSpec, softmax, write_ensemble_spec
from imdm.training.cotrain import SCORES_FILE
from mdm.errors import ConfigError

STREAMS = ["j", "b", "jm", "bm"]


def _logits(predictions: list[int], num_classes: int = 3, margin: float = 2.0) -> np.ndarray:
    logits = np.zeros((len(predictions), num_classes))
    logits[np.arange(len(predictions)), predictions] = margin
    return logits


def _ensemble_folder(folder: Path, val: dict[str, list[int]], test: dict[str, list[int]],
                     val_labels: list[int], test_labels: list[int]) -> Path:
    """An ensemble folder whose members predict ``val[code]`` and ``test[code]`` (confident top classes)."""
    for code in STREAMS:
        (folder / code).mkdir(parents=True)
    write_ensemble_spec(EnsembleSpec(streams=STREAMS, folders=STREAMS), folder)
    for code in STREAMS:
        np.savez(folder / code / SCORES_FILE, val_logits=_logits(val[code]), test_logits=_logits(test[code]),
                 val_labels=np.array(val_labels), test_labels=np.array(test_labels),
                 val_clip_ids=np.array([f"v{i}" for i in range(len(val_labels))]),
                 test_clip_ids=np.array([f"t{i}" for i in range(len(test_labels))]))
    return folder


def test_the_grid_rule_follows_the_scores_it_is_given() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    right = softmax(_logits([0, 1, 2, 0, 1, 2], margin=1.0))
    wrong = softmax(_logits([1, 2, 0, 1, 2, 0], margin=3.0))
    weights = grid_weights(np.stack([right, wrong]), labels)  # stream 1 confidently wrong: dropped
    assert weights[0] > 0 and weights[1] == 0
    assert grid_weights(np.stack([wrong, right]), labels)[0] == 0
    sure, unsure = softmax(_logits(labels.tolist(), margin=3.0)), softmax(_logits(labels.tolist(), margin=0.5))
    # every stream classifies every clip: no weighting wins a clip, so none replaces equal weights
    assert grid_weights(np.stack([unsure, sure, unsure]), labels) == [1.0, 1.0, 1.0]


def test_each_rule_fuses_with_its_own_weights(tmp_path: Path) -> None:
    labels = [0, 1, 2, 0, 1, 2]
    wrong = [1, 2, 0, 1, 2, 0]
    # on validation only the joint stream is right, so the validation rule keeps it alone; on test the
    # joint and bone streams are wrong and the motion streams right: equal weights tie 2 against 2
    # (a tie the argmax breaks), 2:2:1:1 follows the wrong streams, the validation rule the joint stream
    val = {"j": labels, "b": wrong, "jm": wrong, "bm": wrong}
    test = {"j": wrong, "b": wrong, "jm": labels, "bm": labels}
    report = weighting_report(_ensemble_folder(tmp_path / "ens", val, test, labels, labels))
    assert report["validation"]["weights"][0] > 0 and report["validation"]["weights"][1:] == [0.0, 0.0, 0.0]
    assert report["validation"]["test_top1"] == 0.0
    assert report["equal"]["weights"] == [1.0] * 4
    assert report["2:2:1:1"]["weights"] == [2.0, 2.0, 1.0, 1.0] and report["2:2:1:1"]["test_top1"] == 0.0

    right = {code: labels for code in STREAMS}
    folder = _ensemble_folder(tmp_path / "all", right, right, labels, labels)
    assert all(row["test_top1"] == 1.0 for row in weighting_report(folder).values())
    out = tmp_path / "report.json"
    assert main([str(folder), str(tmp_path / "ens"), "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())) == {str(folder), str(tmp_path / "ens")}


def test_members_scored_on_other_clips_are_refused(tmp_path: Path) -> None:
    labels = [0, 1, 2]
    right = {code: labels for code in STREAMS}
    folder = _ensemble_folder(tmp_path / "ens", right, right, labels, labels)
    scores = dict(np.load(folder / "bm" / SCORES_FILE))
    scores["test_clip_ids"] = np.array(["x0", "x1", "x2"])
    np.savez(folder / "bm" / SCORES_FILE, **scores)
    with pytest.raises(ConfigError, match="other test clips"):
        weighting_report(folder)

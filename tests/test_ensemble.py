"""Stream ensembles: fusion with equal weights, test-time turns, a folder that loads and predicts (old
folders too), a tiny four-stream run that can be interrupted and continued."""

import json
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from toy_data import toy_archive

from imdm.bundle import RecognizerSpec, TrainedRecognizer
from imdm.ensemble import (
    ENSEMBLE_FILE,
    TEST_TURNS,
    EnsembleSpec,
    TrainedEnsemble,
    fuse_scores,
    load_classifier,
    read_ensemble_spec,
    turn_rotations,
    turned_probabilities,
)
from imdm.models.recognizer import Recognizer, recognizer_preset
from imdm.training.cotrain import CoTrainConfig
from imdm.training.ensemble import finish_ensemble, train_ensemble
from mdm.config import merge
from mdm.data.archive import read_archive
from mdm.data.loader import ClipDataset, collate_clips
from mdm.data.procedural import generate_procedural_dataset
from mdm.data.transforms import recognition_pipeline
from mdm.errors import ConfigError, UserError

REPO = Path(__file__).resolve().parents[1]


def _one_hot_scores(predictions: list[int], num_classes: int = 3, confidence: float = 0.8) -> np.ndarray:
    scores = np.full((len(predictions), num_classes), (1 - confidence) / (num_classes - 1))
    scores[np.arange(len(predictions)), predictions] = confidence
    return scores


def test_fusion_is_the_weighted_mean_of_probabilities() -> None:
    probabilities = np.stack([_one_hot_scores([0, 1]), _one_hot_scores([2, 1])])
    fused = fuse_scores(probabilities, [3.0, 1.0])
    assert np.allclose(fused, 0.75 * probabilities[0] + 0.25 * probabilities[1])
    assert np.allclose(fused.sum(1), 1.0)
    with pytest.raises(ValueError):
        fuse_scores(probabilities, [0.0, 0.0])


def test_turned_probabilities_average_the_turned_clips_in_one_pass() -> None:
    calls: list[int] = []

    def first_joint_heading(motion: torch.Tensor) -> torch.Tensor:
        """Two-class logits from the heading of joint 0 in the ground plane (x, z)."""
        calls.append(len(motion))
        point = motion[:, 0, 0]
        return torch.stack([point[:, 0], point[:, 2]], -1)

    motion = torch.zeros(2, 4, 3, 3)
    motion[:, :, 0] = torch.tensor([1.0, 0.5, 0.0])  # joint 0 along x, at height 0.5
    rotations = turn_rotations([-90.0, 0.0, 90.0], up_axis=1)
    assert torch.allclose(rotations[1], torch.eye(3)) and torch.allclose(rotations[2] @ rotations[0], torch.eye(3))
    turned_x = rotations[2] @ torch.tensor([1.0, 0.5, 0.0])
    assert torch.allclose(turned_x, torch.tensor([0.0, 0.5, -1.0]), atol=1e-6)  # the height stays
    averaged = turned_probabilities(first_joint_heading, motion, rotations)
    assert calls == [6]  # three turns of a batch of two in one forward pass
    headings = [rotation @ torch.tensor([1.0, 0.5, 0.0]) for rotation in rotations]
    expected = torch.stack([torch.stack([h[0], h[2]]).softmax(-1) for h in headings]).mean(0)
    assert averaged.shape == (2, 2) and torch.allclose(averaged, expected.expand(2, 2), atol=1e-6)


class ThreadRecording(torch.nn.Module):
    """A recognizer that notes the intra-op thread count of every thread that calls it."""

    def __init__(self, model: Recognizer) -> None:
        super().__init__()
        self.model = model
        self.threads: dict[int, int] = {}

    def forward(self, motion: torch.Tensor) -> object:
        self.threads[threading.get_ident()] = torch.get_num_threads()
        return self.model(motion)


def test_members_run_side_by_side_on_shared_out_threads_and_score_as_one_at_a_time() -> None:
    dataset = generate_procedural_dataset(seed=0, clips_per_class=1)
    pipeline = replace(recognition_pipeline(), num_frames=16)
    members = []
    for stream in ("joint", "bone"):
        torch.manual_seed(0)
        config = recognizer_preset("tiny", num_joints=dataset.skeleton.num_joints, parents=dataset.skeleton.parents,
                                   num_classes=len(dataset.class_names), num_frames=16, streams=(stream,))
        members.append(TrainedRecognizer(RecognizerSpec(config, pipeline, list(dataset.class_names)),
                                         ThreadRecording(Recognizer(config).eval())))
    spec = EnsembleSpec(streams=["j", "b"], folders=["j", "b"], weights=[1.0, 1.0],
                        class_names=list(dataset.class_names), turns=list(TEST_TURNS), up_axis=dataset.skeleton.up_axis)
    ensemble = TrainedEnsemble(spec, members)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        side_by_side = ensemble.member_probabilities(dataset, batch_size=5)
        assert [set(member.model.threads.values()) for member in members] == [{1}, {1}]
        threads_of_later_threads: list[int] = []
        later = threading.Thread(target=lambda: threads_of_later_threads.append(torch.get_num_threads()))
        later.start()
        later.join()
        assert torch.get_num_threads() == 2 and threads_of_later_threads == [2]
        in_bf16 = ensemble.member_probabilities(dataset, batch_size=5, mixed_precision="bf16")
        torch.set_num_threads(1)
        one_at_a_time = ensemble.member_probabilities(dataset, batch_size=5)
    finally:
        torch.set_num_threads(before)
    assert side_by_side.shape == (2, len(dataset.labels), len(dataset.class_names))
    assert np.allclose(side_by_side, one_at_a_time, atol=1e-5)
    assert not np.allclose(side_by_side[0], side_by_side[1])  # each row is its own member's
    # batches of 5, 5 and 2 clips, each clip's probabilities in its own row: as with every clip in one batch
    clips = collate_clips([ClipDataset(dataset, pipeline, train=False)[i] for i in range(len(dataset.labels))])
    rotations = turn_rotations(list(TEST_TURNS), dataset.skeleton.up_axis)
    for member, row in zip(members, side_by_side):
        assert np.allclose(row, turned_probabilities(member.logits, clips["motion"], rotations).numpy(), atol=1e-5)
    # autocast is per thread: each worker runs its member in bf16
    assert np.allclose(in_bf16, side_by_side, atol=0.05) and not np.allclose(in_bf16, side_by_side, atol=1e-6)


def _config(archive: Path) -> CoTrainConfig:
    return merge(CoTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)}, "pipeline": {"num_frames": 16},
        "recognizer": {"preset": "tiny", "label_smoothing": 0.0, "optim": {"lr": 1e-2, "warmup_steps": 2}},
        "generator": {"preset": "tiny", "optim": {"lr": 1e-3, "warmup_steps": 2}},
        "batch_size": 8, "epochs": 12, "log_every": 2, "render_samples": False,
    })


def test_four_stream_run_continues_after_a_stop_fuses_with_equal_weights_and_loads(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=16)
    out = tmp_path / "ensemble"
    config = _config(archive)
    streams = ["j", "b", "jm", "bm"]
    assert train_ensemble(config, streams, out, cotrain_streams=["j"], max_minutes=0.001, progress=False) is None
    assert (out / "j" / "checkpoints" / "latest").is_file() and not (out / "b").exists()
    metrics = train_ensemble(config, streams, out, cotrain_streams=["j"], progress=False)
    assert metrics is not None
    assert (out / "j" / "generator").is_dir() and not (out / "b" / "generator").exists()
    assert yaml.safe_load((out / "b" / "config.yaml").read_text())["recognizer"]["overrides"]["streams"] == ["bone"]
    assert metrics["weights"] == [1.0] * 4 and metrics["validation_trained_on"] is False
    assert metrics["turns"] == list(TEST_TURNS)
    for code in streams:
        assert json.loads((out / code / "metrics.json").read_text())["test"]["top1"] == pytest.approx(
            metrics["members"][code]["test_top1"])
    assert metrics["test"]["top1"] > 0.5  # three classes

    ensemble = load_classifier(out)
    assert isinstance(ensemble, TrainedEnsemble) and ensemble.spec.weights == metrics["weights"]
    test = read_archive(archive).split_subset("test")
    probabilities = ensemble.predict(test)
    assert probabilities.shape == (len(test.labels), 3) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert np.isclose(np.mean(probabilities.argmax(1) == test.labels), metrics["test"]["top1"])

    # scores that would favour one stream do not move the weights: every stream weighs the same
    scores_file = out / "b" / "scores.npz"
    scores = dict(np.load(scores_file))
    for split in ("val", "test"):
        scores[f"{split}_logits"] = np.where(np.eye(3)[scores[f"{split}_labels"]] > 0, 50.0, -50.0)
    np.savez(scores_file, **scores)
    assert finish_ensemble(out, ensemble.spec, config)["weights"] == [1.0] * 4

    command = [sys.executable, str(REPO / "run" / "recognize.py"), str(archive), "--checkpoint", str(out), "--json"]
    turned = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    alone = json.loads(subprocess.run(command + ["--no-turns"], capture_output=True, text=True, check=True).stdout)
    assert len(turned) == len(alone) == len(read_archive(archive).labels)
    confidence = [[row["predictions"][0]["confidence"] for row in rows] for rows in (turned, alone)]
    assert not np.allclose(*confidence)  # the turns change the probabilities
    refused = subprocess.run([sys.executable, str(REPO / "run" / "recognize.py"), str(archive), "--checkpoint",
                              str(out / "j"), "--no-turns"], capture_output=True, text=True)
    assert refused.returncode == 2 and "applies to an ensemble folder" in refused.stderr

    # a folder written when weights were chosen on validation, before turns, loads with its saved weights
    # and classifies each clip alone
    old = yaml.safe_load((out / ENSEMBLE_FILE).read_text()) | {"weights": [1.5, 1.0, 0.0, 0.5], "chosen_on": "validation"}
    for written_later in ("turns", "up_axis"):
        old.pop(written_later)
    (out / ENSEMBLE_FILE).write_text(yaml.safe_dump(old))
    assert read_ensemble_spec(out).weights == [1.5, 1.0, 0.0, 0.5] and read_ensemble_spec(out).turns == [0.0]


def test_bad_stream_lists_are_refused_and_a_refit_is_not(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=4)
    with pytest.raises(ConfigError, match="unknown stream 'x'"):
        train_ensemble(_config(archive), ["j", "x"], tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="distinct"):
        train_ensemble(_config(archive), ["j", "j"], tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="not among"):
        train_ensemble(_config(archive), ["j", "b"], tmp_path / "a", cotrain_streams=["bm"], progress=False)
    # equal weights need no held-out clips, so the final refit on training + validation may train an ensemble
    refit = merge(_config(archive), {"train_on_validation": True})
    assert train_ensemble(refit, ["j", "b"], tmp_path / "refit", max_minutes=0, progress=False) is None
    train_ensemble(_config(archive), ["j"], tmp_path / "b", max_minutes=0, progress=False)
    with pytest.raises(ConfigError, match="other settings"):
        train_ensemble(merge(_config(archive), {"epochs": 2}), ["j"], tmp_path / "b", progress=False)
    with pytest.raises(UserError, match="not an ensemble folder|recognizer folder"):
        load_classifier(tmp_path)


def test_the_ensemble_command_refits_by_default_and_config_or_flags_keep_validation_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imdm.commands import train_ensemble as command

    trained: list[CoTrainConfig] = []
    monkeypatch.setattr(command, "train_ensemble", lambda config, *args, **kwargs: trained.append(config) or {})
    strict = tmp_path / "strict.yaml"
    strict.write_text("train_on_validation: false\n")
    command.main(["--output-dir", str(tmp_path / "a")])
    command.main(["--output-dir", str(tmp_path / "b"), "--config", str(strict)])
    command.main(["--output-dir", str(tmp_path / "c"), "--set", "train_on_validation=false"])
    assert [config.train_on_validation for config in trained] == [True, False, False]
    assert CoTrainConfig().train_on_validation is False  # the main job keeps its validation clips out


def test_a_time_budget_is_shared_by_the_streams_still_to_train(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from imdm.training import ensemble as ensemble_run

    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=4)
    budgets: list[float] = []

    def finished_at_once(config: CoTrainConfig, run: Path, *, max_minutes: float, **kwargs: object) -> Path:
        budgets.append(max_minutes)
        run.mkdir(parents=True)
        (run / "metrics.json").write_text("{}")
        return run

    monkeypatch.setattr(ensemble_run, "cotrain", finished_at_once)
    monkeypatch.setattr(ensemble_run, "finish_ensemble", lambda out, spec, config: {"streams": spec.streams})
    assert train_ensemble(_config(archive), ["j", "b", "jm", "bm"], tmp_path / "ens", max_minutes=40,
                          progress=False) == {"streams": ["j", "b", "jm", "bm"]}
    # a quarter of the budget to the first stream; what a stream leaves unused passes to the next ones
    assert budgets == pytest.approx([10.0, 40 / 3, 20.0, 40.0], abs=0.01)

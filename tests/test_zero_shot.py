"""Zero-shot recognition and retrieval: split bookkeeping, the triplet diffusion loss, denoising-error
scoring, the metrics, and a tiny end-to-end run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from toy_data import toy_archive

from imdm.training import zero_shot as zero_shot_run
from imdm.training.cotrain import CoTrainConfig
from imdm.zero_shot import (
    TRIPLET_MARGIN,
    ClassSplit,
    TextFeatureDenoiser,
    gate_threshold,
    retrieval_metrics,
    seen_classes_only,
    seen_confidence,
    tdsm_loss,
    tdsm_scores,
    zero_shot_metrics,
)
from mdm.config import merge
from mdm.data.archive import read_archive
from mdm.data.sources import DataConfig, load_training_data
from mdm.errors import ConfigError
from mdm.text import TextEncoder, fallback_text

NAMES = [f"class_{k}" for k in range(6)]
REPO = Path(__file__).resolve().parents[1]


def zero_shot_main(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location("zero_shot_cli", REPO / "run" / "zero_shot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def test_random_splits_are_seeded_and_named_splits_refuse_bad_names() -> None:
    first = ClassSplit.random(NAMES, 2, seed=3)
    assert first == ClassSplit.random(NAMES, 2, seed=3) and len(first.unseen) == 2
    assert sorted(first.seen + first.unseen) == list(range(6))
    assert len({ClassSplit.random(NAMES, 2, seed=s).unseen for s in range(10)}) > 1
    assert ClassSplit.named(NAMES, ["class_4", "class_1"]).unseen == (1, 4)
    with pytest.raises(ConfigError, match=r"no class\(es\) \['jump'\]; the classes are class_0"):
        ClassSplit.named(NAMES, ["jump"])
    with pytest.raises(ConfigError, match="twice"):
        ClassSplit.named(NAMES, ["class_1", "class_1"])
    with pytest.raises(ConfigError, match="unseen-count"):
        ClassSplit.random(NAMES, 5, seed=0)


def test_seen_classes_only_drops_every_unseen_clip_and_renumbers(tmp_path: Path) -> None:
    dataset = read_archive(toy_archive(tmp_path / "toy.npz", clips_per_class=4))
    split = ClassSplit.named(list(dataset.class_names), [dataset.class_names[1]])
    seen = seen_classes_only(dataset, split)
    assert seen.class_names == [dataset.class_names[0], dataset.class_names[2]]
    assert len(seen) == int(np.sum(dataset.labels != 1)) and set(seen.labels.tolist()) == {0, 1}
    original = dict(zip(dataset.clip_ids, dataset.labels))
    assert all(original[c] != 1 for c in seen.clip_ids)


def test_triplet_diffusion_loss_by_hand() -> None:
    model = TextFeatureDenoiser(4, 2)
    for parameter in model.parameters():
        torch.nn.init.zeros_(parameter)  # predicts a zero velocity: every error is the velocity's mean square
    features, labels, texts = torch.ones(3, 4), torch.tensor([0, 1, 0]), torch.eye(2)
    generator = torch.Generator().manual_seed(0)
    loss, terms = tdsm_loss(model, features, labels, texts, triplet_weight=2.0, generator=generator)
    generator = torch.Generator().manual_seed(0)
    t = torch.randint(0, model.scheduler.num_train_timesteps, (3,), generator=generator)
    noise = torch.randn(3, 4, generator=generator)
    signal = model.scheduler.train.sqrt_alphas_cumprod[t].float()[:, None]
    scale = model.scheduler.train.sqrt_one_minus_alphas_cumprod[t].float()[:, None]
    error = (signal * noise - scale * features).pow(2).mean(-1)
    # true and wrong texts give the same error, so the triplet term is the margin
    assert terms["triplet"] == pytest.approx(TRIPLET_MARGIN)
    assert loss.item() == pytest.approx(error.mean().item() + 2.0 * TRIPLET_MARGIN, rel=1e-5)


def test_denoising_errors_pick_the_right_class_on_a_toy_problem() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    texts = F.normalize(torch.randn(4, 8, generator=generator), dim=-1)
    centres = 2 * torch.randn(4, 16, generator=generator)
    seen = torch.tensor([0, 1, 2])
    model = TextFeatureDenoiser(16, 8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(300):
        labels = seen[torch.randint(0, 3, (64,), generator=generator)]
        features = centres[labels] + 0.2 * torch.randn(64, 16, generator=generator)
        loss, _ = tdsm_loss(model, features, labels, texts[:3], 1.0, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    labels = torch.arange(3).repeat_interleave(10)
    features = centres[labels] + 0.2 * torch.randn(30, 16, generator=generator)
    scores = tdsm_scores(model.eval(), features, texts[:3])
    assert scores.shape == (30, 3)
    assert (scores.argmax(1) == labels).float().mean() > 0.9
    assert torch.equal(scores, tdsm_scores(model, features, texts[:3]))  # fixed noises


def test_metrics_by_hand() -> None:
    split = ClassSplit.of(["a", "b", "c", "d"], [2, 3])
    # clips of classes 2, 3, 3 (unseen), 0 and 1 (seen); scores against all four classes, and the
    # recognizer's logits over the seen classes 0 and 1 (confidences 0.5, 0.5, 0.993, 0.982, 0.525)
    labels = np.array([2, 3, 3, 0, 1])
    scores = np.array([[0.0, 0.0, 0.9, 0.1],
                       [0.0, 0.0, 0.8, 0.2],    # unseen-only: wrong
                       [0.95, 0.0, 0.1, 0.7],   # right among the unseen, but the gate gives it seen class 0
                       [0.9, 0.0, 0.0, 0.0],
                       [0.0, 0.9, 0.5, 0.0]])   # unsure recognizer: sent to the unseen side, wrong
    seen_logits = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [4.0, 0.0], [0.0, 0.1]])
    metrics = zero_shot_metrics(scores, labels, split, seen_logits, threshold=0.9)
    assert metrics["zsl_top1"] == pytest.approx(2 / 3)
    assert metrics["gzsl_seen"] == 0.5 and metrics["gzsl_unseen"] == pytest.approx(1 / 3)
    assert metrics["gzsl_harmonic"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    everything_seen = zero_shot_metrics(scores, labels, split, seen_logits, threshold=0.0)
    assert everything_seen["gzsl_unseen"] == 0.0 and everything_seen["gzsl_harmonic"] == 0.0
    retrieval = retrieval_metrics(np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), np.array([0, 1, 1]))
    assert retrieval["motion_to_text_R@1"] == pytest.approx(2 / 3) and retrieval["motion_to_text_median_rank"] == 1
    assert retrieval["text_to_motion_R@1"] == 1.0  # text 1's best clip is clip 2


def test_the_gate_keeps_95_percent_of_validation_clips_on_the_seen_side() -> None:
    confidence = np.linspace(0.0, 1.0, 21)
    threshold = gate_threshold(confidence)
    assert threshold == pytest.approx(0.05) and np.mean(confidence >= threshold) >= 0.95
    assert seen_confidence(np.array([[0.0, 0.0], [np.log(3.0), 0.0]])) == pytest.approx([0.5, 0.75])
    with pytest.raises(ConfigError, match="validation clips"):
        gate_threshold(np.zeros(0))


def test_a_tiny_run_keeps_unseen_classes_out_of_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=12)
    dataset = load_training_data(DataConfig(name="archive", root=str(archive)))
    unseen_name = dataset.class_names[2]
    encoded: list[str] = []
    original_encode = TextEncoder.encode
    monkeypatch.setattr(TextEncoder, "encode", lambda self, sentences, **kw: encoded.extend(sentences)
                        or original_encode(self, sentences, **kw))
    monkeypatch.setattr(zero_shot_run, "TDSM_STEPS", 40)
    trained_on: list[set[int]] = []
    original_fit = zero_shot_run.CoTrainer.fit

    def watched_fit(trainer: zero_shot_run.CoTrainer, *args: object) -> Path:
        trained_on.append(set(trainer.train_set.class_names) | set(trainer.val_set.class_names))
        return original_fit(trainer, *args)

    monkeypatch.setattr(zero_shot_run.CoTrainer, "fit", watched_fit)
    config = merge(CoTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)}, "pipeline": {"num_frames": 16},
        "recognizer": {"preset": "tiny", "optim": {"lr": 1e-2, "warmup_steps": 2}},
        "batch_size": 8, "epochs": 2})
    split = ClassSplit.named(list(dataset.class_names), [unseen_name])
    texts = [fallback_text(name) for name in dataset.class_names]
    models = zero_shot_run.train_on_seen(config, dataset, split, texts, tmp_path / "run", progress=False)
    assert trained_on == [set(dataset.class_names) - {unseen_name}]
    assert not any(unseen_name.replace("_", " ") in sentence for sentence in encoded)
    assert models.tdsm.denoiser.condition[0].in_features == 2 * 384 + models.tdsm.denoiser.hidden
    figures = zero_shot_run.evaluate_zero_shot(models, dataset, split, texts)
    assert figures["unseen_test_clips"] == int(np.sum(dataset.labels[dataset.split == "test"] == 2))
    assert figures["tdsm"]["zsl_top1"] == 1.0  # one unseen class: the only candidate
    assert 0.0 <= figures["baseline"]["gzsl_harmonic"] <= 1.0
    assert 0.0 < models.gate_threshold <= 1.0 and figures["gate_threshold"] == models.gate_threshold


def test_the_command_writes_its_figures_and_refuses_bad_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=12)
    monkeypatch.setattr(zero_shot_run, "TDSM_STEPS", 20)
    common = ["--dataset", "archive", "--data-root", str(archive), "--preset", "tiny", "--set", "batch_size=8",
              "--set", "epochs=1", "--set", "pipeline.num_frames=16"]
    assert zero_shot_main(common + ["--unseen-count", "1", "--output-dir", str(tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "zero_shot.json").read_text())
    assert len(result["unseen"]) == 1 and {"baseline", "tdsm"} <= set(result)
    assert "TDSM" in (tmp_path / "run" / "summary.txt").read_text()
    with pytest.raises(ConfigError, match="no class"):
        zero_shot_main(common + ["--unseen", "fly", "--output-dir", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="train_on_validation"):
        zero_shot_main(common + ["--unseen-count", "1", "--set", "train_on_validation=true",
                                 "--output-dir", str(tmp_path / "refit")])
    assert not (tmp_path / "refit").exists()

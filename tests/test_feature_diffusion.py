"""Text-guided latent feature diffusion: it learns class-conditional features, and a co-training run
with it deploys the plain recognizer."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from imdm.bundle import TrainedRecognizer
from imdm.feature_diffusion import FeatureDiffusion, generated_feature_quality
from imdm.models.recognizer import Recognizer
from imdm.training.cotrain import CoTrainConfig, CoTrainer
from mdm.config import merge
from mdm.errors import ConfigError
from mdm.models import count_parameters
from toy_data import toy_archive


def toy_features(count: int, centres: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, len(centres), (count,), generator=generator)
    return centres[labels] + 0.2 * torch.randn(count, centres.shape[1], generator=generator), labels


@pytest.mark.parametrize("text", [True, False])
def test_the_loss_falls_and_generated_features_land_in_their_class(text: bool) -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    centres = 2 * torch.randn(3, 16, generator=generator)
    part = FeatureDiffusion(16, 3, torch.nn.functional.normalize(torch.randn(3, 8), dim=-1) if text else None)
    optimizer = torch.optim.AdamW(part.parameters(), lr=2e-3)
    losses = []
    for _ in range(400):
        features, labels = toy_features(64, centres, generator)
        loss = part(features, labels, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) < 0.3 * sum(losses[:20])
    real, labels = toy_features(300, centres, generator)
    nearest_centre = torch.nn.Module()
    nearest_centre.forward = lambda x: -torch.cdist(x, centres)  # type: ignore[method-assign]
    quality = generated_feature_quality(part, nearest_centre, real, labels, per_class=20)
    assert quality["class_accuracy"] == 1.0
    assert 0.2 < quality["spread_ratio"] < 2.0


def test_generation_is_seeded_and_shaped() -> None:
    part = FeatureDiffusion(12, 4)
    labels = torch.tensor([0, 3, 3])
    first = part.generate(labels, generator=torch.Generator().manual_seed(5))
    assert first.shape == (3, 12)
    assert torch.equal(first, part.generate(labels, generator=torch.Generator().manual_seed(5)))


def test_text_conditions_must_cover_every_class() -> None:
    with pytest.raises(ConfigError, match="2 fine-text embeddings for 3 classes"):
        FeatureDiffusion(8, 3, torch.randn(2, 4))


def test_cotraining_with_both_parts_logs_them_and_deploys_the_plain_recognizer(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=16)
    config = merge(CoTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)}, "pipeline": {"num_frames": 16},
        "recognizer": {"preset": "tiny", "text_weight": 0.5, "feature_diffusion": {"weight": 1.0},
                       "optim": {"lr": 1e-2, "warmup_steps": 2}},
        "generator": {"enabled": False}, "batch_size": 8, "epochs": 4, "log_every": 2, "render_samples": False})
    run = CoTrainer(config, tmp_path / "run", progress=False).fit()
    header = (run / "log.csv").read_text().splitlines()[0]
    assert "train_feature_denoising" in header and "train_generated_ce" in header
    assert load_file(str(run / "class_texts.safetensors"))["fine"].shape == (3, 384)
    recognizer = TrainedRecognizer.load(run)
    assert count_parameters(recognizer.model) == count_parameters(Recognizer(recognizer.spec.model))
    quality = json.loads((run / "metrics.json").read_text())["generated_features"]
    assert 0.0 <= quality["class_accuracy"] <= 1.0 and quality["spread_ratio"] > 0

"""Skeleton–text alignment: the multi-positive loss by hand, a head that learns, a co-training run with it."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from imdm.bundle import TrainedRecognizer
from imdm.models.recognizer import Recognizer
from imdm.text_alignment import TextAlignment, class_text_embeddings, multi_positive_kl
from imdm.training.cotrain import CoTrainConfig, CoTrainer
from mdm.config import merge
from mdm.models import count_parameters
from mdm.text import TextEncoder, fallback_text
from toy_data import toy_archive

REPO = Path(__file__).resolve().parents[1]


def test_multi_positive_kl_by_hand() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    # distinct labels: the target is the identity, KL = -log softmax of the diagonal
    assert multi_positive_kl(logits, torch.tensor([0, 1])).item() == pytest.approx(math.log(1 + math.exp(-2)))
    # one label: the target is uniform over the row, KL = log 0.5 - mean log softmax
    log_softmax = [2 - math.log(math.exp(2) + 1), -math.log(math.exp(2) + 1)]
    expected = math.log(0.5) - 0.5 * sum(log_softmax)
    assert multi_positive_kl(logits, torch.tensor([3, 3])).item() == pytest.approx(expected)


def test_the_head_learns_to_put_each_feature_nearest_its_class_text() -> None:
    torch.manual_seed(0)
    texts = F.normalize(torch.randn(3, 8), dim=-1)
    centres = torch.randn(3, 16)
    labels = torch.arange(3).repeat(8)
    features = centres[labels] + 0.1 * torch.randn(24, 16)
    head = TextAlignment(16, texts)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = head(features, labels).item()
    for _ in range(100):
        loss = head(features, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * first
    nearest = (F.normalize(head.projection(features), dim=-1) @ texts.T).argmax(1)
    assert torch.equal(nearest, labels)


def test_class_text_embeddings_average_the_coarse_phrases() -> None:
    encoder = TextEncoder()
    texts = [fallback_text("wave"), fallback_text("sit_down")]
    embeddings = class_text_embeddings(texts, encoder)
    assert embeddings.shape == (2, 384)
    assert torch.allclose(embeddings[1], encoder.encode(["sit down"])[0], atol=1e-5)


def test_cotraining_with_alignment_saves_the_embeddings_and_deploys_the_plain_recognizer(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=16)
    config = merge(CoTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)}, "pipeline": {"num_frames": 16},
        "recognizer": {"preset": "tiny", "text_weight": 0.5, "optim": {"lr": 1e-2, "warmup_steps": 2}},
        "generator": {"enabled": False}, "batch_size": 8, "epochs": 3, "log_every": 2, "render_samples": False})
    trainer = CoTrainer(config, tmp_path / "run", progress=False)
    run = trainer.fit()
    assert "train_alignment" in (run / "log.csv").read_text().splitlines()[0]
    embeddings = load_file(str(run / "class_texts.safetensors"))["embeddings"]
    assert embeddings.shape == (3, 384)
    recognizer = TrainedRecognizer.load(run)
    assert torch.equal(recognizer.text_embeddings, embeddings)
    plain = Recognizer(recognizer.spec.model)
    assert count_parameters(recognizer.model) == count_parameters(plain)  # no inference cost
    assert json.loads((run / "metrics.json").read_text())["test"]["num_clips"] == 12
    assert recognizer.text_space(trainer.test_set).shape == (12, 384)

    retrieve = [sys.executable, str(REPO / "run/retrieve.py"), str(archive), "--checkpoint", str(run), "--json"]
    metrics = json.loads(subprocess.run(retrieve + ["--class-texts"], capture_output=True, text=True, check=True).stdout)
    assert 0 <= metrics["motion_to_text_R@1"] <= 1 and metrics["motion_to_text_R@3"] == 1.0  # three classes
    found = json.loads(subprocess.run(retrieve + ["--text", "a person moves", "--top", "2"], capture_output=True,
                                      text=True, check=True).stdout)
    assert len(found) == 1 and len(found[0]["clips"]) == 2
    assert found[0]["clips"][0]["similarity"] >= found[0]["clips"][1]["similarity"]


def test_a_bad_texts_file_ends_the_main_job_with_one_message(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=4)
    texts = tmp_path / "texts.yaml"
    texts.write_text("classes: [{name: class_0}]")
    result = subprocess.run([sys.executable, str(REPO / "run/mdm_imdm_cotrain.py"), "--dataset", "archive",
                             "--data-root", str(archive), "--texts", str(texts), "--set", "recognizer.text_weight=1",
                             "--preset", "tiny", "--set", "batch_size=4", "--output-dir", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no texts for class(es) ['class_1', 'class_2']" in result.stderr

"""Distilling a classifier into a recognizer: the soft-target loss, the teacher's probabilities, a tiny run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from toy_data import toy_archive

from imdm.distillation import distillation_loss, teacher_probabilities
from imdm.ensemble import load_classifier
from imdm.training.cotrain import CoTrainConfig, CoTrainer
from mdm.config import merge
from mdm.data.archive import read_archive
from mdm.errors import ConfigError


def test_the_loss_is_t_squared_kl_of_the_softened_distributions() -> None:
    teacher = torch.tensor([[0.7, 0.2, 0.1]])
    logits = torch.tensor([[1.0, 0.0, -1.0]])
    t = 2.0
    q = teacher.log().div(t).softmax(-1)[0].tolist()
    s = (logits / t).softmax(-1)[0].tolist()
    expected = t * t * sum(qi * math.log(qi / si) for qi, si in zip(q, s))
    assert distillation_loss(logits, teacher, t).item() == pytest.approx(expected, rel=1e-4)
    # a student whose logits are the teacher's log-probabilities matches it at any temperature
    assert distillation_loss(teacher.log() + 3.0, teacher, 5.0).item() == pytest.approx(0.0, abs=1e-6)


def test_the_loss_falls_as_a_student_learns_the_teacher() -> None:
    torch.manual_seed(0)
    teacher = torch.softmax(torch.randn(16, 5) * 2, -1)
    logits = torch.zeros(16, 5, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    losses = []
    for _ in range(200):
        loss = distillation_loss(logits, teacher)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0]
    assert (logits.argmax(-1) == teacher.argmax(-1)).all()


def _config(archive: Path, **recognizer: object) -> CoTrainConfig:
    return merge(CoTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)}, "pipeline": {"num_frames": 16},
        "recognizer": {"preset": "tiny", "optim": {"lr": 1e-2, "warmup_steps": 2}, **recognizer},
        "generator": {"enabled": False}, "batch_size": 8, "epochs": 3, "log_every": 2, "render_samples": False,
    })


def test_a_recognizer_learns_from_a_teacher_folder_and_refuses_one_of_other_classes(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=12)
    teacher_folder = CoTrainer(_config(archive), tmp_path / "teacher", progress=False).fit() / "recognizer"
    trainer = CoTrainer(_config(archive, teacher=str(teacher_folder)), tmp_path / "student", progress=False)
    expected = load_classifier(teacher_folder).predict(trainer.train_set)
    assert trainer.teacher_probabilities is not None
    assert np.allclose(trainer.teacher_probabilities.numpy(), expected, atol=1e-6)  # row i is training clip i
    batch = next(iter(trainer.train_loader))
    terms = trainer.train_step(batch)
    assert terms["distillation"] > 0
    run = CoTrainer(_config(archive, teacher=str(teacher_folder)), tmp_path / "student_run", progress=False).fit()
    assert "distillation" in (run / "log.csv").read_text()

    other = read_archive(archive)
    other.class_names = [name + "_other" for name in other.class_names]
    with pytest.raises(ConfigError, match="the teacher"):
        teacher_probabilities(teacher_folder, other)
    with pytest.raises(ConfigError, match="teacher_weight"):
        _config(archive, teacher=str(teacher_folder), teacher_weight=-1.0)

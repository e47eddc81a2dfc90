"""Distilling a trained classifier (an ensemble, usually) into a recognizer: Hinton et al.'s soft-target term.

The teacher's class probabilities of every training clip are computed once, through the evaluation
pipeline (an ensemble with its turns); a training step adds ``T^2 * KL(q || softmax(z / T))`` for the
student's logits ``z``, with ``q = softmax(log p / T)`` the teacher's probabilities ``p`` softened by the
temperature ``T``. The deployed recognizer is the student alone: nothing changes at inference.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from imdm.ensemble import load_classifier
from mdm.data.dataset import MotionDataset
from mdm.errors import ConfigError

TEMPERATURE = 2.0
"""``T`` of the soft targets (Hinton et al. use 2-20; 2 keeps the teacher's top class dominant)."""


def teacher_probabilities(folder: str | Path, clips: MotionDataset) -> torch.Tensor:
    """Float32 ``[N, K]``: the classifier of ``folder``'s probabilities of ``clips``, whose class names it must share.

    Raises:
        ConfigError: the teacher knows other classes.
    """
    teacher = load_classifier(folder)
    if list(teacher.class_names) != list(clips.class_names):
        raise ConfigError(f"the teacher {folder} classifies {teacher.class_names}, not this dataset's "
                          f"{clips.class_names}")
    return torch.from_numpy(teacher.predict(clips)).float()


def distillation_loss(logits: torch.Tensor, teacher: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Scalar ``T^2 * KL(q || softmax(logits / T))`` averaged over the batch, for student ``logits`` ``[B, K]`` and
    teacher probabilities ``teacher`` ``[B, K]`` (``q = softmax(log teacher / T)``)."""
    target = (teacher.clamp_min(1e-12).log() / temperature).log_softmax(-1)
    student = (logits / temperature).log_softmax(-1)
    return temperature ** 2 * F.kl_div(student, target, log_target=True, reduction="batchmean")

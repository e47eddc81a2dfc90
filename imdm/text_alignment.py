"""Skeleton–text alignment: a training-only head that pulls a recognizer's pooled feature toward its
class's text embedding (GAP / LST style), leaving the deployed recognizer unchanged.

The head projects pooled features ``[B, D]`` into the text space ``[B, E]``; cosine similarities
to the batch's class texts, times a learned temperature, give ``[B, B]`` logits. Several clips of a
batch share a class, so the target of row ``i`` is uniform over the clips of ``i``'s class (the
multi-positive form), and the loss is the mean of the KL divergences of the skeleton-to-text rows
and of the text-to-skeleton columns from their targets.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mdm.text import ClassText, TextEncoder

INITIAL_TEMPERATURE = 0.07
MAX_LOGIT_SCALE = 100.0


def class_text_embeddings(texts: list[ClassText], encoder: TextEncoder) -> torch.Tensor:
    """Float32 ``[K, E]``: per class the normalised mean of its coarse phrases' embeddings."""
    phrases = [phrase for text in texts for phrase in text.coarse]
    embedded = encoder.encode(phrases)
    owner = torch.repeat_interleave(torch.arange(len(texts)), torch.tensor([len(t.coarse) for t in texts]))
    means = torch.zeros(len(texts), embedded.shape[1]).index_add_(0, owner, embedded)
    return F.normalize(means, dim=-1)


def fine_text_embeddings(texts: list[ClassText], encoder: TextEncoder) -> torch.Tensor:
    """Float32 ``[K, E]``: per class the unit-length embedding of its fine description."""
    return encoder.encode([text.fine for text in texts])


def multi_positive_kl(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(target || softmax(row)) for logits ``[B, B]``; the target of row ``i`` is
    uniform over the columns ``j`` with ``labels[j] == labels[i]``."""
    positive = (labels[:, None] == labels[None, :]).to(logits.dtype)
    target = positive / positive.sum(dim=1, keepdim=True)
    log_target = torch.log(target.clamp_min(1e-12))
    return (target * (log_target - F.log_softmax(logits, dim=1))).sum(dim=1).mean()


class TextAlignment(nn.Module):
    """Training-only head: pooled recognizer feature -> text space, aligned with the class texts.

    Args:
        feature_dim: ``D`` of the pooled feature.
        text_embeddings: float ``[K, E]`` unit-length embeddings of the class texts (a buffer).
    """

    def __init__(self, feature_dim: int, text_embeddings: torch.Tensor) -> None:
        super().__init__()
        self.projection = nn.Linear(feature_dim, text_embeddings.shape[1])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / INITIAL_TEMPERATURE)))
        self.register_buffer("text_embeddings", text_embeddings.float())

    def logits(self, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``[B, B]`` scaled cosine similarities of clip ``i``'s feature to clip ``j``'s class text."""
        skeleton = F.normalize(self.projection(pooled.float()), dim=-1)
        texts = self.text_embeddings[labels]
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE) * skeleton @ texts.T

    def forward(self, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The alignment loss of pooled features ``[B, D]`` with labels ``[B]``."""
        logits = self.logits(pooled, labels)
        return 0.5 * (multi_positive_kl(logits, labels) + multi_positive_kl(logits.T, labels))

"""Cross-view consistency: the views of one performance should get the same class distribution.

NW-UCLA films every performance with several cameras at once. Where a batch holds two views of
one performance, each view's predicted class distribution is pulled towards the other's:
``KL(stop_grad(p_twin) || p_anchor)`` per anchor, averaged over anchors whose twin is in the batch.
Both members of a pair are anchors, so the pull is symmetric; the stop-gradient keeps each term a
plain distillation target. Same twin rule as :func:`imdm.triplet.random_positives` on the groups.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imdm.triplet import random_positives


def twin_consistency_loss(
    logits: torch.Tensor, groups: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean KL divergence from each clip's twin prediction (detached) to its own.

    Args:
        logits: ``[B, K]`` class scores.
        groups: int ``[B]`` performance of each clip.
        generator: picks the twin where a group holds more than two clips.

    Returns:
        The scalar loss (0, still differentiable, when no clip has a twin in the batch) and the
        number of clips that had one.
    """
    if logits.dim() != 2 or groups.shape != logits.shape[:1]:
        raise ValueError(f"expected logits [B, K] and groups [B], got {tuple(logits.shape)} and {tuple(groups.shape)}")
    twins = random_positives(groups, generator)
    has_twin = (twins >= 0).to(logits.dtype)
    log_probs = F.log_softmax(logits, dim=1)
    target = log_probs.detach()[twins.clamp_min(0)]
    per_clip = F.kl_div(log_probs, target, reduction="none", log_target=True).sum(dim=1)
    count = has_twin.sum()
    return (per_clip * has_twin).sum() / count.clamp_min(1.0), count

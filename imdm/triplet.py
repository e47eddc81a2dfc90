"""Vectorised batch-hard triplet mining: a random positive and the closest negative per anchor.

For anchor ``i`` the positive is drawn uniformly among the other samples of its class and the
negative is the closest sample of another class; the loss is ``relu(d(i, p) - d(i, n) + margin)``
with Euclidean distances, averaged over anchors that have both.

Cost: the negatives are mined without gradient from the Gram matrix of the ``[B, d]``
features (one ``[B, B]`` matrix product, nothing of size ``[B, B, d]``, no loop over the
batch); the loss then recomputes the two chosen distances per anchor from the features, so
the backward pass is ``O(B d)``. Positives need ``O(B log B)``.

With groups (e.g. the views of one performance, which NW-UCLA films from several cameras at
once), an anchor's positive is another member of its group where the batch holds one, which
pulls the views of one performance together; anchors without one fall back to their class.

Random positives are reproducible: ``u = torch.rand(B, generator=generator)``; anchor ``i``
with ``n`` samples in its class (itself included) takes the ``floor(u[i] * (n - 1))``-th of the
other samples of its class in index order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-12


def random_positives(labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each anchor a uniformly random other sample of the same label (rule in the module docstring).

    Args:
        labels: int ``[B]``.
        generator: draws ``u = rand(B)`` (on the generator's device, then moved to the labels').

    Returns:
        int64 ``[B]``: index of the chosen positive, -1 where the anchor's class has no other sample.
    """
    size = labels.shape[0]
    device = generator.device if generator is not None else labels.device
    u = torch.rand(size, generator=generator, device=device).to(labels.device)
    order = torch.argsort(labels, stable=True)
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    count = counts[inverse]
    start = (torch.cumsum(counts, dim=0) - counts)[inverse]
    position = torch.empty_like(order)
    position[order] = torch.arange(size, device=labels.device)
    rank = position - start
    others = (count - 1).clamp_min(1)
    pick = torch.minimum((u * others).long(), others - 1)
    pick = pick + (pick >= rank).long()
    chosen = order[(start + pick).clamp_max(size - 1)]
    return torch.where(count >= 2, chosen, -1)


def group_positives(
    labels: torch.Tensor, groups: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """For each anchor a random other member of its group, or of its class where the batch holds none.

    Args:
        labels: int ``[B]``.
        groups: int ``[B]`` group of each sample; the members of a group share a label.
        generator: as :func:`random_positives` (two draws: groups, then classes).

    Returns:
        int64 ``[B]``: index of the chosen positive, -1 where the anchor has neither.
    """
    from_group = random_positives(groups, generator)
    from_class = random_positives(labels, generator)
    return torch.where(from_group >= 0, from_group, from_class)


@torch.no_grad()
def hardest_negatives(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """For each anchor the closest sample of another label, from the Gram matrix.

    Args:
        features: ``[B, d]``.
        labels: int ``[B]``.

    Returns:
        int64 ``[B]``: index of the closest negative, -1 where every sample has the anchor's label.
    """
    squared_norms = (features * features).sum(dim=1)
    # ||f_i - f_j||^2 = |f_i|^2 + (|f_j|^2 - 2 f_i.f_j); the first term is constant along a row.
    scores = torch.addmm(squared_norms[None, :], features, features.T, alpha=-2.0)
    same = labels[:, None] == labels[None, :]
    chosen = scores.masked_fill_(same, torch.inf).argmin(dim=1)
    return torch.where(same.all(dim=1), -1, chosen)


def _distances(features: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """``[B]`` Euclidean distances of each row to ``features[others]`` (index -1: any row, masked later)."""
    squared = (features - features[others.clamp_min(0)]).square().sum(dim=1)
    return squared.clamp_min(_EPS).sqrt()


def _triplet_loss(
    features: torch.Tensor, labels: torch.Tensor, positives: torch.Tensor, margin: float, normalize: bool
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Batch-hard triplet loss with given positives (see :func:`batch_hard_triplet_loss`)."""
    if normalize:
        features = F.normalize(features, dim=1)
    negatives = hardest_negatives(features, labels)
    positive_distance = _distances(features, positives)
    negative_distance = _distances(features, negatives)
    per_anchor = F.relu(positive_distance - negative_distance + margin)

    weights = ((positives >= 0) & (negatives >= 0)).to(features.dtype)
    count = weights.sum().clamp_min(1.0)
    loss = (per_anchor * weights).sum() / count
    stats = {
        "active_fraction": ((per_anchor > 0).to(features.dtype) * weights).sum().detach() / count,
        "positive_distance": (positive_distance * weights).sum().detach() / count,
        "negative_distance": (negative_distance * weights).sum().detach() / count,
        "valid_anchors": weights.sum().detach(),
    }
    return loss, stats


def batch_hard_triplet_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    margin: float,
    generator: torch.Generator | None = None,
    normalize: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Triplet loss with a random positive and the hardest (closest) negative per anchor.

    Args:
        features: ``[B, d]``.
        labels: int ``[B]``.
        margin: the triplet margin.
        generator: source of the random positives (see the module docstring).
        normalize: L2-normalise the features first (distances then lie in ``[0, 2]``).

    Returns:
        The scalar loss (0, still differentiable, when no anchor has both a positive and a
        negative) and detached statistics over valid anchors: ``active_fraction`` (triplets
        with a positive loss), ``positive_distance`` and ``negative_distance`` (means),
        ``valid_anchors`` (count).
    """
    return _triplet_loss(features, labels, random_positives(labels, generator), margin, normalize)


def pooled_triplet_loss(
    pooled_features: list[torch.Tensor],
    labels: torch.Tensor,
    layers: list[int],
    margin: float,
    generator: torch.Generator | None = None,
    normalize: bool = True,
    groups: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Batch-hard triplet loss averaged over chosen layers of pooled features.

    Args:
        pooled_features: per layer ``[B, d_i]`` (e.g. :attr:`RecognizerOutput.pooled`).
        labels: int ``[B]``.
        layers: indices into ``pooled_features`` (negative indices count from the end).
        margin, generator, normalize: as :func:`batch_hard_triplet_loss`; one draw of random
            positives is shared by all layers.
        groups: int ``[B]`` or None: positives from the anchor's group first (:func:`group_positives`).

    Returns:
        The mean loss over layers and the statistics averaged over layers.
    """
    if not layers:
        raise ValueError("pooled_triplet_loss needs at least one layer")
    count = len(pooled_features)
    bad = [layer for layer in layers if not -count <= layer < count]
    if bad:
        raise ValueError(f"triplet layers {bad} out of range for {count} pooled features")
    positives = random_positives(labels, generator) if groups is None else group_positives(labels, groups, generator)
    results = [_triplet_loss(pooled_features[layer], labels, positives, margin, normalize) for layer in layers]
    loss = torch.stack([result[0] for result in results]).mean()
    stats = {key: torch.stack([result[1][key] for result in results]).mean() for key in results[0][1]}
    return loss, stats

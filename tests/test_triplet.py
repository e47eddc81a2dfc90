"""Batch-hard triplet mining against a brute-force reference with explicit loops."""

import math

import pytest
import torch
import torch.nn.functional as F

from imdm.triplet import (
    batch_hard_triplet_loss,
    group_positives,
    hardest_negatives,
    pooled_triplet_loss,
    random_positives,
)


def reference_loss(features: torch.Tensor, labels: torch.Tensor, margin: float, seed: int, normalize: bool) -> dict:
    """Loops over anchors; the documented rule for the random positive: the floor(u[i] * n)-th of the n others."""
    size = len(labels)
    u = torch.rand(size, generator=torch.Generator().manual_seed(seed))
    if normalize:
        features = F.normalize(features, dim=1)
    losses, positive_distances, negative_distances = [], [], []
    for i in range(size):
        positives = [j for j in range(size) if j != i and labels[j] == labels[i]]
        negatives = [j for j in range(size) if labels[j] != labels[i]]
        if not positives or not negatives:
            continue
        p = positives[int(u[i].item() * len(positives))]
        d_pos = torch.linalg.norm(features[i] - features[p]).item()
        d_neg = min(torch.linalg.norm(features[i] - features[j]).item() for j in negatives)
        losses.append(max(0.0, d_pos - d_neg + margin))
        positive_distances.append(d_pos)
        negative_distances.append(d_neg)
    mean = lambda values: sum(values) / len(values) if values else 0.0  # noqa: E731
    return {
        "loss": mean(losses),
        "active_fraction": mean([float(v > 0) for v in losses]),
        "positive_distance": mean(positive_distances),
        "negative_distance": mean(negative_distances),
        "valid_anchors": len(losses),
    }


@pytest.mark.parametrize("normalize", [True, False])
def test_matches_brute_force_reference(normalize: bool) -> None:
    data = torch.Generator().manual_seed(1)
    features = torch.randn(40, 8, generator=data)
    labels = torch.randint(0, 6, (40,), generator=data)
    labels[0] = 99  # a class with a single sample: no positive, masked out
    margin = 0.3 if normalize else 1.0
    loss, stats = batch_hard_triplet_loss(features, labels, margin, generator=torch.Generator().manual_seed(7),
                                          normalize=normalize)
    expected = reference_loss(features, labels, margin, seed=7, normalize=normalize)
    assert loss.item() == pytest.approx(expected["loss"], rel=1e-4, abs=1e-5)
    for key in ("active_fraction", "positive_distance", "negative_distance", "valid_anchors"):
        assert stats[key].item() == pytest.approx(expected[key], rel=1e-4, abs=1e-5), key
    assert expected["valid_anchors"] == 39


def test_hardest_negatives_match_cdist() -> None:
    features = torch.randn(30, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    labels = torch.arange(30) % 4
    distances = torch.cdist(features, features).masked_fill(labels[:, None] == labels[None, :], torch.inf)
    assert torch.equal(hardest_negatives(features, labels), distances.argmin(dim=1))
    assert (hardest_negatives(features, torch.zeros(30, dtype=torch.int64)) == -1).all()


def test_random_positives_are_uniform_same_label_others() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 2, 2])
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([random_positives(labels, generator) for _ in range(3000)])
    assert (draws[:, 4] == -1).all()
    assert set(draws[:, 5].tolist()) == {6} and set(draws[:, 6].tolist()) == {5}
    for anchor in range(4):
        counts = torch.bincount(draws[:, anchor], minlength=4)[:4].float()
        assert counts[anchor] == 0
        others = counts[[j for j in range(4) if j != anchor]] / len(draws)
        assert torch.allclose(others, torch.full_like(others, 1 / 3), atol=0.04)


def test_same_generator_seed_gives_same_loss() -> None:
    features = torch.randn(32, 4, generator=torch.Generator().manual_seed(3))
    labels = torch.arange(32) % 4
    first = batch_hard_triplet_loss(features, labels, 0.2, generator=torch.Generator().manual_seed(5))[0]
    second = batch_hard_triplet_loss(features, labels, 0.2, generator=torch.Generator().manual_seed(5))[0]
    assert first.item() == second.item()


def test_no_valid_anchor_gives_differentiable_zero() -> None:
    features = torch.randn(4, 3, requires_grad=True)
    for labels in (torch.zeros(4, dtype=torch.int64), torch.arange(4)):
        loss, stats = batch_hard_triplet_loss(features, labels, 0.5, generator=torch.Generator().manual_seed(0))
        loss.backward()
        assert loss.item() == 0.0 and stats["valid_anchors"].item() == 0
        assert torch.isfinite(features.grad).all() and (features.grad == 0).all()


def test_gradient_finite_with_duplicate_features() -> None:
    features = torch.ones(6, 3).requires_grad_()
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    loss, _ = batch_hard_triplet_loss(features, labels, 0.5, normalize=False)
    loss.backward()
    assert loss.item() == pytest.approx(0.5, abs=1e-5)
    assert torch.isfinite(features.grad).all()


def test_loss_separates_classes_when_minimised() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(24, 4, generator=generator).requires_grad_()
    labels = torch.arange(24) % 3
    optimizer = torch.optim.Adam([features], lr=0.1)
    first = None
    for _ in range(60):
        loss, stats = batch_hard_triplet_loss(features, labels, 0.5, generator=generator)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * first
    assert stats["negative_distance"] > stats["positive_distance"] + 0.5


def test_pooled_loss_averages_layers_with_shared_positives() -> None:
    data = torch.Generator().manual_seed(2)
    pooled = [torch.randn(20, dim, generator=data) for dim in (6, 10, 3)]
    labels = torch.randint(0, 4, (20,), generator=data)
    loss, stats = pooled_triplet_loss(pooled, labels, [0, -1], 0.4, generator=torch.Generator().manual_seed(9))
    single = [batch_hard_triplet_loss(pooled[i], labels, 0.4, generator=torch.Generator().manual_seed(9))
              for i in (0, 2)]
    assert loss.item() == pytest.approx((single[0][0].item() + single[1][0].item()) / 2, rel=1e-6)
    expected_fraction = (single[0][1]["active_fraction"] + single[1][1]["active_fraction"]).item() / 2
    assert stats["active_fraction"].item() == pytest.approx(expected_fraction, rel=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        pooled_triplet_loss(pooled, labels, [3], 0.4)
    with pytest.raises(ValueError, match="at least one"):
        pooled_triplet_loss(pooled, labels, [], 0.4)


def test_no_batch_by_batch_by_dim_tensor_in_graph() -> None:
    """Mining runs without gradient: autograd saves nothing larger than [B, d] (never [B, B, d])."""
    size, dim = 64, 128
    features = torch.randn(size, dim, requires_grad=True)
    labels = torch.arange(size) % 8
    largest = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal largest
        largest = max(largest, tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss, _ = batch_hard_triplet_loss(features, labels, 0.3)
    loss.backward()
    assert 0 < largest <= size * dim
    assert math.isfinite(loss.item())


def test_group_positives_prefer_the_group_then_the_class() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    groups = torch.tensor([7, 7, 8, 9, 5, 6])  # 0 and 1: one performance from two views
    for seed in range(20):
        positives = group_positives(labels, groups, torch.Generator().manual_seed(seed))
        assert positives[0] == 1 and positives[1] == 0
        assert positives[2] in (0, 1)  # no twin in the batch: another clip of its class
        assert positives[3] == 4 and positives[4] == 3
        assert positives[5] == -1  # neither
    # Every anchor with a twin: the positive distance is the mean distance between twins.
    features = F.normalize(torch.randn(6, 5, generator=torch.Generator().manual_seed(1)), dim=1)
    labels, groups = torch.tensor([0, 0, 0, 0, 1, 1]), torch.tensor([3, 3, 4, 4, 5, 5])
    _, stats = pooled_triplet_loss([features], labels, [0], 0.3, groups=groups)
    twin_distances = torch.linalg.norm(features[0::2] - features[1::2], dim=1)
    assert stats["positive_distance"].item() == pytest.approx(twin_distances.mean().item(), rel=1e-5)
    assert stats["valid_anchors"].item() == 6

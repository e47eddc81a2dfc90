"""Cross-view consistency loss: zero for agreeing twins, pulls each view towards the other's prediction."""

import pytest
import torch
import torch.nn.functional as F

from imdm.consistency import twin_consistency_loss


def test_agreeing_twins_cost_nothing_and_unpaired_clips_are_left_out() -> None:
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 5.0]])
    loss, count = twin_consistency_loss(logits, torch.tensor([7, 7, 3]))
    assert count == 2 and loss.item() == pytest.approx(0.0, abs=1e-7)


def test_loss_is_the_mean_kl_from_each_twin_and_only_the_anchor_gets_gradient() -> None:
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0]], requires_grad=True)
    groups = torch.tensor([0, 0, 1, 2])  # clips 0 and 1 are twins; 2 and 3 have none
    loss, count = twin_consistency_loss(logits, groups)
    p = F.softmax(logits.detach(), dim=1)
    kl = lambda target, anchor: (p[target] * (p[target].log() - p[anchor].log())).sum()  # noqa: E731
    assert count == 2 and loss.item() == pytest.approx(((kl(1, 0) + kl(0, 1)) / 2).item(), rel=1e-5)
    loss.backward()
    assert logits.grad[2:].abs().sum() == 0
    # The gradient through the anchor alone (target detached) is (p_anchor - p_twin) / count.
    expected = (p[[0, 1]] - p[[1, 0]]) / 2
    assert torch.allclose(logits.grad[:2], expected, atol=1e-6)


def test_no_twins_give_a_zero_loss_that_still_backpropagates() -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    loss, count = twin_consistency_loss(logits, torch.arange(4))
    loss.backward()
    assert count == 0 and loss.item() == 0 and logits.grad is not None


def test_following_the_loss_makes_the_twins_agree() -> None:
    torch.manual_seed(0)
    logits = torch.randn(8, 5, requires_grad=True)
    groups = torch.arange(8) // 2
    optimizer = torch.optim.SGD([logits], lr=1.0)
    first, _ = twin_consistency_loss(logits, groups)
    for _ in range(50):
        loss, _ = twin_consistency_loss(logits, groups)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05 * first.item()


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="groups"):
        twin_consistency_loss(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))

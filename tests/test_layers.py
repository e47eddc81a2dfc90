"""Layers written for CPU speed compute what PyTorch's own layers compute: the cheap-mask dropout,
the written-out attention and the denoiser's encoder layer."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mdm.models.dropout import Dropout, cpu_keep_mask
from mdm.models.transformer import EncoderLayer, attention


def test_keep_mask_rate_and_independence() -> None:
    torch.manual_seed(0)
    keep, keep_probability = cpu_keep_mask((400, 1000), 0.1)
    assert keep.dtype == torch.bool and keep.shape == (400, 1000)
    assert keep_probability == pytest.approx(1 - round(0.1 * 2**15) / 2**15)
    assert keep.float().mean().item() == pytest.approx(keep_probability, abs=0.003)
    # Neighbouring entries share a 64-bit word; they must still be independent draws.
    neighbours = (keep[:, :-1] & keep[:, 1:]).float().mean().item()
    assert neighbours == pytest.approx(keep_probability**2, abs=0.003)
    for p in (0.0, 0.5, 0.9):
        keep, keep_probability = cpu_keep_mask((200, 1000), p)
        assert keep.float().mean().item() == pytest.approx(keep_probability, abs=0.005)


def test_dropout_keeps_the_expectation_and_is_identity_in_evaluation() -> None:
    torch.manual_seed(0)
    layer = Dropout(0.3)
    x = torch.ones(200, 1000)
    y = layer(x)
    kept = y != 0
    assert 0.68 < kept.float().mean().item() < 0.72
    assert torch.allclose(y[kept], torch.full_like(y[kept], y[kept][0].item()))
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.equal(layer.eval()(x), x)
    # A probability that rounds to 1 drops everything instead of dividing by zero.
    assert torch.equal(Dropout(1 - 1e-6)(x), torch.zeros_like(x))


def test_dropout_gradient_follows_the_mask() -> None:
    torch.manual_seed(0)
    x = torch.randn(50, 60, requires_grad=True)
    y = Dropout(0.5)(x)
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)


@pytest.mark.parametrize("masked", [False, True])
def test_cpu_training_attention_matches_scaled_dot_product_attention(masked: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 7, 8, generator=generator)
    allowed = None
    if masked:
        allowed = (torch.arange(7) < torch.tensor([7, 4])[:, None])[:, None, None, :]
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    assert torch.allclose(attention(q, k, v, allowed, 0.0, training=True), expected, atol=1e-5)
    assert torch.allclose(attention(q, k, v, allowed, 0.3, training=False), expected, atol=1e-5)


def test_cpu_training_attention_drops_weights() -> None:
    torch.manual_seed(0)
    q, k = torch.zeros(2, 1, 1, 50, 4)
    v = torch.ones(1, 1, 50, 4)
    out = attention(q, k, v, None, 0.5, training=True)
    # Uniform weights 1/50, half of them dropped and the rest doubled: each output is (kept / 50) * 2.
    assert 0.5 < out.mean().item() < 1.5
    assert not torch.allclose(out, torch.ones_like(out))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_encoder_layer_is_torchs_layer_with_the_same_parameters(norm_first: bool, activation: str) -> None:
    torch.manual_seed(0)
    ours = EncoderLayer(16, 4, 32, 0.1, activation, norm_first)
    reference = nn.TransformerEncoderLayer(16, 4, 32, 0.1, activation=activation, batch_first=True,
                                           norm_first=norm_first)
    reference.load_state_dict(ours.state_dict())
    assert set(ours.state_dict()) == set(reference.state_dict())
    x = torch.randn(3, 9, 16)
    padding = torch.arange(9) >= torch.tensor([9, 6, 3])[:, None]
    valid = ~padding
    for mode in ("eval", "train-no-dropout"):
        if mode == "eval":
            ours.eval(), reference.eval()
        else:
            for module in (ours, reference):
                module.train()
                for child in module.modules():
                    if isinstance(child, nn.Dropout):
                        child.p = 0.0
                module.self_attn.dropout = 0.0
        expected = reference(x, src_key_padding_mask=padding)
        assert torch.allclose(ours(x, padding)[valid], expected[valid], atol=1e-5), mode
        assert torch.allclose(ours(x), reference(x), atol=1e-5), mode

"""The denoiser's transformer encoder layer, and the attention it shares with the recognizer.

:class:`EncoderLayer` computes what ``nn.TransformerEncoderLayer(batch_first=True)`` computes and has
its parameter names, so checkpoints of either load into the other. In training,
``nn.MultiheadAttention`` re-packs its input projection into separate query, key and value tensors
and back; on 2 CPU threads those copies and their backward took a fifth of the ``paper`` denoiser's
training step. Here one linear map gives ``[B, T, 3, H, d]`` and the attention reads views of it.

:func:`attention` also serves the recognizer's frame stages.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdm.models.dropout import Dropout, cpu_dropout


def attention(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None, dropout: float, training: bool) -> Tensor:
    """Scaled dot-product attention of ``q, k, v [B, H, T, d]`` -> ``[B, H, T, d]``.

    ``allowed``: bool, broadcastable to ``[B, H, T, T]``, True where a query may attend to a key (None:
    everywhere); ``dropout`` on the attention weights in training. In CPU training the attention is
    written out (scores, softmax, :func:`~mdm.models.dropout.cpu_dropout`, weighted sum): for the ``paper``
    denoiser's shapes (64 clips, 4 heads, 65 tokens of 128) its forward and backward took 28 ms in
    bf16 and 40 ms in fp32 on 2 threads, against 47 and 61 ms for ``F.scaled_dot_product_attention``,
    whose CPU dropout falls back to its copy-heavy reference path. Elsewhere it is that function.
    """
    if not (training and q.device.type == "cpu"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout if training else 0.0)
    scores = torch.matmul(q * (1.0 / math.sqrt(q.shape[-1])), k.transpose(-2, -1))
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = scores.softmax(dim=-1)
    if dropout > 0:
        weights = cpu_dropout(weights, dropout)
    return torch.matmul(weights.to(v.dtype), v)


class PackedSelfAttention(nn.Module):
    """Multi-head self-attention over ``[B, T, D]`` with ``nn.MultiheadAttention``'s parameters
    (``in_proj_weight [3D, D]``, ``in_proj_bias [3D]``, ``out_proj``) and initialisation."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        """``x [B, T, D]``; ``padding`` bool ``[B, T]``, True = a key no query may attend to."""
        b, t, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, t, 3, self.heads, d // self.heads) \
            .permute(2, 0, 3, 1, 4)
        allowed = None if padding is None else ~padding[:, None, None, :]
        y = attention(q, k, v, allowed, self.dropout, self.training)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Self-attention and feed-forward with residuals, post-norm (as MDM) or pre-norm, on ``[B, T, D]``."""

    def __init__(self, width: int, heads: int, ff_dim: int, dropout: float, activation: Literal["gelu", "relu"],
                 norm_first: bool) -> None:
        super().__init__()
        self.self_attn = PackedSelfAttention(width, heads, dropout)
        self.linear1 = nn.Linear(width, ff_dim)
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(ff_dim, width)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = F.gelu if activation == "gelu" else F.relu
        self.norm_first = norm_first

    def _feed_forward(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        """``x [B, T, D]`` -> ``[B, T, D]``; ``padding`` bool ``[B, T]``, True = padded (hidden as a key)."""
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), padding))
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self.dropout1(self.self_attn(x, padding)))
        return self.norm2(x + self._feed_forward(x))

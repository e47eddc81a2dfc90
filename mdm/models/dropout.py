"""Dropout whose random mask is cheap on the CPU.

PyTorch's CPU dropout draws one 32-bit random number per element (``bernoulli_``); in a training
step of the ``paper`` models on 2 CPU threads that drawing took 18% of the step. :class:`Dropout`
draws 64-bit random words instead and cuts each into four 15-bit numbers, a quarter of the draws;
the drop probability is rounded to a multiple of ``2**-15`` and the kept values are scaled by the
rounded keep probability, so the output's expectation is still the input. Elsewhere (GPUs, whose
dropout is fast; evaluation; ``inplace``) it is ``nn.Dropout``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

_LEVELS = 1 << 15
"""Random levels of one mask entry: the drop probability is rounded to a multiple of 1 / _LEVELS."""


def cpu_keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> tuple[Tensor, float]:
    """A boolean mask of ``shape`` whose entries are True with probability about ``1 - p``.

    Args:
        shape: the mask's shape.
        p: drop probability in ``[0, 1)``.

    Returns:
        The mask (on the CPU) and its exact keep probability ``1 - round(p * 2**15) / 2**15``.
    """
    count = math.prod(shape)
    threshold = round(p * _LEVELS)
    if threshold >= _LEVELS:  # beyond int16, where the comparison below happens
        return torch.zeros(shape, dtype=torch.bool), 0.0
    # random_() fills an int64 with 63 random bits (the sign bit is 0); each of its four 16-bit
    # pieces, masked to 15 bits, is a uniform number in [0, 2**15).
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_()
    levels = words.view(torch.int16)[:count].bitwise_and_(_LEVELS - 1)
    return (levels >= threshold).view(shape), 1.0 - threshold / _LEVELS


def cpu_dropout(x: Tensor, p: float) -> Tensor:
    """Training-mode dropout of a CPU tensor with :func:`cpu_keep_mask`: kept values scaled by
    ``1 / keep probability``."""
    keep, keep_probability = cpu_keep_mask(x.shape, p)
    kept = x.mul(keep)
    return kept if keep_probability == 0.0 else kept.mul_(1.0 / keep_probability)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask in CPU training (see the module docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or self.p >= 1.0 or self.inplace or x.device.type != "cpu":
            return super().forward(x)
        return cpu_dropout(x, self.p)


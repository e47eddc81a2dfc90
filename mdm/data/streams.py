"""Joint, bone and motion streams of joint positions, as extra input channels (as in pyskl)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

STREAMS = ("joint", "bone", "motion")
"""Stream names, in their usual order."""


def input_streams(x: torch.Tensor, parents: torch.Tensor, streams: tuple[str, ...]) -> torch.Tensor:
    """Joint, bone and motion streams concatenated on channels.

    Args:
        x: joint positions ``[N, T, J, C]``.
        parents: int64 ``[J]``, -1 for the root.
        streams: names from :data:`STREAMS`, in output order.

    Returns:
        ``[N, T, J, S * C]``: bone = joint minus its parent (zero at the root); motion = next
        frame minus this frame (zero at the last frame).
    """
    parts = []
    for stream in streams:
        if stream == "joint":
            parts.append(x)
        elif stream == "bone":
            bones = x - x[:, :, parents.clamp_min(0)]
            parts.append(torch.where((parents >= 0)[:, None], bones, torch.zeros_like(x)))
        elif stream == "motion":
            parts.append(F.pad(x[:, 1:] - x[:, :-1], (0, 0, 0, 0, 0, 1)))
        else:
            raise ValueError(f"unknown stream {stream!r}; streams: {', '.join(STREAMS)}")
    return torch.cat(parts, dim=-1)

"""Joint, bone, joint-motion and bone-motion streams of joint positions (as in pyskl and CTR-GCN).

A recognizer takes one or several streams concatenated on channels; an ensemble trains one
recognizer per stream and fuses their scores (:mod:`imdm.ensemble`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

STREAMS = ("joint", "bone", "motion", "bone_motion")
"""Stream names, in their usual order; ``motion`` is the joints' motion."""

STREAM_CODES = {"j": "joint", "b": "bone", "jm": "motion", "bm": "bone_motion"}
"""The field's short names of the four streams (pyskl: j, b, jm, bm)."""


def stream_name(code_or_name: str) -> str:
    """The stream named by a short code (``jm``) or a full name (``motion``); ValueError otherwise."""
    if code_or_name in STREAM_CODES:
        return STREAM_CODES[code_or_name]
    if code_or_name in STREAMS:
        return code_or_name
    known = ", ".join(f"{code} ({name})" for code, name in STREAM_CODES.items())
    raise ValueError(f"unknown stream {code_or_name!r}; streams: {known}")


def _bones(x: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
    bones = x - x[:, :, parents.clamp_min(0)]
    return torch.where((parents >= 0)[:, None], bones, torch.zeros_like(x))


def _motion(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x[:, 1:] - x[:, :-1], (0, 0, 0, 0, 0, 1))


def input_streams(x: torch.Tensor, parents: torch.Tensor, streams: tuple[str, ...]) -> torch.Tensor:
    """Streams of ``x`` concatenated on channels.

    Args:
        x: joint positions ``[N, T, J, C]``.
        parents: int64 ``[J]``, -1 for the root.
        streams: names from :data:`STREAMS`, in output order.

    Returns:
        ``[N, T, J, S * C]``: bone = joint minus its parent (zero at the root); motion = next
        frame minus this frame (zero at the last frame); bone motion = the bones' motion.
    """
    parts = []
    for stream in streams:
        if stream == "joint":
            parts.append(x)
        elif stream == "bone":
            parts.append(_bones(x, parents))
        elif stream == "motion":
            parts.append(_motion(x))
        elif stream == "bone_motion":
            parts.append(_motion(_bones(x, parents)))
        else:
            raise ValueError(f"unknown stream {stream!r}; streams: {', '.join(STREAMS)}")
    return torch.cat(parts, dim=-1)

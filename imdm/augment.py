"""Occlusion augmentations of the recognizer's input, applied to a training batch on its device.

SkateFormer's NW-UCLA reader (KAIST-VICLab/SkateFormer, ``feeders/feeder_ucla.py``) trains with two
of them, each with probability 0.5 per clip: one coordinate axis of the whole clip set to zero (the
clip seen projected on a plane), and a random set of joints set to zero on a random set of frames
(a crude stand-in for the joints a depth camera loses to self-occlusion). Here they act on the
recognizer's input only, after the clip pipeline (centring, view normalisation, rotations): the
generator trained on the same batch still learns to produce whole clips (the recognizer features it
is conditioned on are those of the occluded input).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mdm.errors import ConfigError


@dataclass(frozen=True)
class InputDropConfig:
    """Per-clip occlusion of the recognizer's training input (all off by default).

    Attributes:
        axis_prob: probability that one coordinate axis, drawn uniformly, is zero over the whole clip.
        joint_prob: probability that a random set of joints is zero on a random set of frames.
        joints: fewest and most joints dropped (inclusive), drawn uniformly.
        frame_share: lowest and highest share of the frames they are dropped on, drawn uniformly.
    """

    axis_prob: float = 0.0
    joint_prob: float = 0.0
    joints: tuple[int, int] = (4, 12)
    frame_share: tuple[float, float] = (0.25, 0.5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "joints", tuple(self.joints))
        object.__setattr__(self, "frame_share", tuple(self.frame_share))
        for name in ("axis_prob", "joint_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"input_drop.{name} must lie in [0, 1], got {getattr(self, name)}")
        if len(self.joints) != 2 or not 1 <= self.joints[0] <= self.joints[1]:
            raise ConfigError(f"input_drop.joints must be [low, high] with 1 <= low <= high, got {list(self.joints)}")
        if len(self.frame_share) != 2 or not 0.0 < self.frame_share[0] <= self.frame_share[1] <= 1.0:
            raise ConfigError(f"input_drop.frame_share must be [low, high] within (0, 1], got {list(self.frame_share)}")

    @property
    def enabled(self) -> bool:
        return self.axis_prob > 0 or self.joint_prob > 0


def _random_subset(batch: int, size: int, counts: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Bool ``[batch, size]``: per row, ``counts[row]`` positions drawn without replacement."""
    ranks = torch.rand(batch, size, device=device).argsort(dim=1).argsort(dim=1)
    return ranks < counts[:, None]


def drop_inputs(motion: torch.Tensor, config: InputDropConfig) -> torch.Tensor:
    """``motion`` with the occlusions of ``config`` drawn per clip (from torch's global generator).

    Args:
        motion: ``[B, T, J, C]`` or ``[B, M, T, J, C]``; every person of a clip loses the same
            axis, joints and frames.

    Returns:
        A new tensor of the same shape and dtype; ``motion`` is not changed.
    """
    if not config.enabled:
        return motion
    persons = motion.dim() == 5
    batch, frames, joints, channels = motion.shape[0], *motion.shape[-3:]
    device = motion.device
    if config.joints[1] > joints:
        raise ConfigError(f"input_drop.joints {list(config.joints)} exceeds the clip's {joints} joints")
    keep = torch.ones(batch, frames, joints, channels, dtype=torch.bool, device=device)
    if config.axis_prob > 0:
        axis = torch.randint(channels, (batch,), device=device)
        chosen = torch.rand(batch, device=device) < config.axis_prob
        dropped_axis = torch.nn.functional.one_hot(axis, channels).bool() & chosen[:, None]
        keep &= ~dropped_axis[:, None, None, :]
    if config.joint_prob > 0:
        low, high = config.joints
        joint_counts = torch.randint(low, high + 1, (batch,), device=device)
        share = torch.empty(batch, device=device).uniform_(*config.frame_share)
        frame_counts = (share * frames).round().clamp(min=1)
        chosen = torch.rand(batch, device=device) < config.joint_prob
        dropped = (_random_subset(batch, joints, joint_counts, device)[:, None, :]
                   & _random_subset(batch, frames, frame_counts, device)[:, :, None]
                   & chosen[:, None, None])
        keep &= ~dropped[..., None]
    if persons:
        keep = keep[:, None]
    return motion * keep.to(motion.dtype)

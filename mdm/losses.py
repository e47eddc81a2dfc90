"""Diffusion training losses on predicted clean motion, all masked by valid frames.

The model predicts x0 in the representation's feature space ``[B, T, J, C]``; geometric terms
(bone lengths, foot contact) need joint positions ``[B, T, J, 3]``, which come from a ``decode``
callable (the representation's ``decode``, e.g. forward kinematics for 6D rotations). No
kinematics lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from mdm.errors import ConfigError
from mdm.skeleton import Skeleton


@dataclass
class DiffusionLossWeights:
    """Weights of the loss terms; a zero weight skips the term (and its decoding).

    Attributes:
        reconstruction: x0 MSE on the features.
        velocity: MSE of frame-to-frame differences of the features.
        bone_length: MSE between predicted and target bone lengths (positions).
        foot_contact: squared foot-joint velocity where the target's feet are in contact.
        foot_contact_threshold: a target foot joint moving less than this per frame (in the
            positions' units, e.g. metres per frame) is in contact.
    """

    reconstruction: float = 1.0
    velocity: float = 0.0
    bone_length: float = 0.0
    foot_contact: float = 0.0
    foot_contact_threshold: float = 0.01

    def __post_init__(self) -> None:
        for name in ("reconstruction", "velocity", "bone_length", "foot_contact", "foot_contact_threshold"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loss weight {name} must be non-negative, got {getattr(self, name)}")


def _frame_mask(mask: Tensor | None, reference: Tensor) -> Tensor:
    """Float ``[B, T]`` mask (all ones for None) on the device and dtype of ``reference``."""
    if mask is None:
        return torch.ones(reference.shape[:2], device=reference.device, dtype=reference.dtype)
    if tuple(mask.shape) != tuple(reference.shape[:2]):
        raise ValueError(f"mask must be [B, T] = {list(reference.shape[:2])}, got {list(mask.shape)}")
    return mask.to(reference.dtype)


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
    """Mean squared error over valid frames and all trailing dimensions.

    Args:
        pred, target: ``[B, T, ...]``.
        mask: bool ``[B, T]`` (True = valid) or None.
    Returns:
        scalar; zero when no frame is valid.
    """
    weights = _frame_mask(mask, pred)
    squared = (pred - target).square().reshape(*pred.shape[:2], -1)
    per_entry = squared.shape[-1]
    return (squared.sum(-1) * weights).sum() / (weights.sum() * per_entry).clamp(min=1.0)


def reconstruction_loss(pred_x0: Tensor, target_x0: Tensor, mask: Tensor | None) -> Tensor:
    """Masked x0 MSE on features ``[B, T, J, C]``."""
    return masked_mse(pred_x0, target_x0, mask)


def _pair_mask(mask: Tensor | None, reference: Tensor) -> Tensor:
    """``[B, T-1]`` mask of frame pairs ``(t, t+1)`` with both frames valid."""
    frames = _frame_mask(mask, reference)
    return frames[:, 1:] * frames[:, :-1]


def velocity_loss(pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
    """MSE of frame differences ``x[t+1] - x[t]`` over pairs of valid frames; ``[B, T, ...]`` inputs."""
    pred_velocity = pred[:, 1:] - pred[:, :-1]
    target_velocity = target[:, 1:] - target[:, :-1]
    return masked_mse(pred_velocity, target_velocity, _pair_mask(mask, pred).bool())


def _check_positions(positions: Tensor, skeleton: Skeleton, term: str) -> None:
    if positions.ndim != 4 or tuple(positions.shape[2:]) != (skeleton.num_joints, 3):
        raise ValueError(
            f"{term} loss needs positions [B, T, {skeleton.num_joints}, 3] (skeleton {skeleton.name}), got "
            f"{list(positions.shape)}; pass the representation's decode for non-position features"
        )


def bone_lengths(positions: Tensor, skeleton: Skeleton) -> Tensor:
    """Length of every bone ``(parent, child)`` of ``skeleton``: ``[B, T, J, 3]`` -> ``[B, T, J-1]``."""
    parents, children = zip(*skeleton.bones)
    return (positions[:, :, list(children)] - positions[:, :, list(parents)]).norm(dim=-1)


def bone_length_loss(pred_positions: Tensor, target_positions: Tensor, mask: Tensor | None,
                     skeleton: Skeleton) -> Tensor:
    """Masked MSE between predicted and target bone lengths; positions ``[B, T, J, 3]``."""
    _check_positions(pred_positions, skeleton, "bone_length")
    return masked_mse(bone_lengths(pred_positions, skeleton), bone_lengths(target_positions, skeleton), mask)


def foot_contact_loss(pred_positions: Tensor, target_positions: Tensor, mask: Tensor | None,
                      skeleton: Skeleton, threshold: float) -> Tensor:
    """Squared predicted foot velocity where the target's foot joint is in contact.

    A foot joint is in contact between valid frames ``t`` and ``t+1`` when the target moves it
    less than ``threshold``. The loss is the mean over contact entries of the squared predicted
    displacement; zero when the skeleton has no foot joints or nothing is in contact.

    Args:
        pred_positions, target_positions: ``[B, T, J, 3]``.
        mask: bool ``[B, T]`` or None.
    """
    _check_positions(pred_positions, skeleton, "foot_contact")
    if not skeleton.foot_joints:
        return pred_positions.new_zeros(())
    feet = list(skeleton.foot_joints)
    target_speed = (target_positions[:, 1:, feet] - target_positions[:, :-1, feet]).norm(dim=-1)
    contact = (target_speed < threshold).to(pred_positions.dtype) * _pair_mask(mask, pred_positions)[..., None]
    pred_velocity = pred_positions[:, 1:, feet] - pred_positions[:, :-1, feet]
    return (pred_velocity.square().sum(-1) * contact).sum() / contact.sum().clamp(min=1.0)


def diffusion_loss(
    pred_x0: Tensor,
    target_x0: Tensor,
    mask: Tensor | None,
    weights: DiffusionLossWeights,
    skeleton: Skeleton | None = None,
    decode: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted sum of the active loss terms.

    Args:
        pred_x0, target_x0: features ``[B, T, J, C]``.
        mask: bool ``[B, T]`` (True = valid frame) or None.
        weights: term weights; zero-weight terms are not computed.
        skeleton: needed when ``bone_length`` or ``foot_contact`` is weighted.
        decode: features ``[B, T, J, C]`` -> positions ``[B, T, J, 3]``; None when the
            features are positions already. Called only when a positional term is active.
    Returns:
        ``(total, terms)``: scalar total and the unweighted value of each computed term
        (keys ``reconstruction``, ``velocity``, ``bone_length``, ``foot_contact``).
    """
    terms: dict[str, Tensor] = {}
    if weights.reconstruction > 0:
        terms["reconstruction"] = reconstruction_loss(pred_x0, target_x0, mask)
    if weights.velocity > 0:
        terms["velocity"] = velocity_loss(pred_x0, target_x0, mask)
    if weights.bone_length > 0 or weights.foot_contact > 0:
        if skeleton is None:
            raise ValueError("diffusion_loss needs a skeleton for the bone_length and foot_contact terms")
        use_feet = weights.foot_contact > 0 and bool(skeleton.foot_joints)
        if weights.bone_length > 0 or use_feet:
            pred_positions = decode(pred_x0) if decode is not None else pred_x0
            target_positions = decode(target_x0) if decode is not None else target_x0
            if weights.bone_length > 0:
                terms["bone_length"] = bone_length_loss(pred_positions, target_positions, mask, skeleton)
            if use_feet:
                terms["foot_contact"] = foot_contact_loss(pred_positions, target_positions, mask, skeleton,
                                                          weights.foot_contact_threshold)
    total = sum((getattr(weights, name) * value for name, value in terms.items()), pred_x0.new_zeros(()))
    return total, terms

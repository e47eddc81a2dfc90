"""Diffusion losses: closed forms, masking, invariances, and a loss that falls."""

from __future__ import annotations

import math

import pytest
import torch

from mdm.errors import ConfigError
from mdm.losses import (
    DiffusionLossWeights,
    bone_length_loss,
    diffusion_loss,
    foot_contact_loss,
    masked_mse,
    reconstruction_loss,
    velocity_loss,
)
from mdm.models import MotionDenoiser, denoiser_preset
from mdm.skeleton import Skeleton, load_skeleton

ALL_TERMS = DiffusionLossWeights(reconstruction=1.0, velocity=1.0, bone_length=1.0, foot_contact=1.0)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models run fastest on one thread; on a busy shared CPU two threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def skeleton() -> Skeleton:
    return load_skeleton("kinect_v1")


def random_motion(batch: int = 3, frames: int = 10, joints: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, joints, 3, generator=torch.Generator().manual_seed(seed))


def lengths_mask(lengths: list[int], frames: int) -> torch.Tensor:
    return torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]


def rotation_matrix(axis: torch.Tensor, angle: float) -> torch.Tensor:
    """Rodrigues' formula: ``[3, 3]`` rotation by ``angle`` about unit ``axis``."""
    axis = axis / axis.norm()
    cross = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return torch.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def test_all_terms_zero_for_identical_inputs(skeleton: Skeleton) -> None:
    motion = random_motion()
    total, terms = diffusion_loss(motion, motion.clone(), lengths_mask([10, 7, 3], 10), ALL_TERMS, skeleton)
    assert set(terms) == {"reconstruction", "velocity", "bone_length", "foot_contact"}
    assert total.item() == 0.0 and all(value.item() == 0.0 for value in terms.values())


def test_masked_mse_closed_form() -> None:
    target = torch.zeros(2, 4, 5, 3)
    pred = target + 2.0
    pred[1, 2:] = 100.0
    assert masked_mse(pred, target, lengths_mask([4, 2], 4)).item() == pytest.approx(4.0)
    assert masked_mse(pred, target, torch.zeros(2, 4, dtype=torch.bool)).item() == 0.0


def test_constant_offset_has_no_velocity_error(skeleton: Skeleton) -> None:
    target = random_motion()
    pred = target + 0.5
    mask = lengths_mask([10, 7, 3], 10)
    assert reconstruction_loss(pred, target, mask).item() == pytest.approx(0.25)
    assert velocity_loss(pred, target, mask).item() == pytest.approx(0.0, abs=1e-12)


def test_velocity_loss_uses_only_pairs_of_valid_frames() -> None:
    target = torch.zeros(1, 4, 2, 3)
    pred = target.clone()
    pred[0, 3] = 1.0  # the jump 2 -> 3 crosses into a padded frame
    assert velocity_loss(pred, target, lengths_mask([3], 4)).item() == 0.0
    assert velocity_loss(pred, target, None).item() == pytest.approx(1.0 / 3.0)


def test_masked_frames_are_ignored_by_every_term(skeleton: Skeleton) -> None:
    target = random_motion(seed=1)
    pred = target + 0.1 * random_motion(seed=2)
    mask = lengths_mask([10, 6, 2], 10)
    changed = torch.where(mask[..., None, None], pred, random_motion(seed=3) * 50)
    weights = DiffusionLossWeights(reconstruction=1.0, velocity=1.0, bone_length=1.0, foot_contact=1.0,
                                   foot_contact_threshold=10.0)
    total, terms = diffusion_loss(pred, target, mask, weights, skeleton)
    total_changed, terms_changed = diffusion_loss(changed, target, mask, weights, skeleton)
    assert terms["foot_contact"].item() > 0
    for name in terms:
        assert terms[name].item() == pytest.approx(terms_changed[name].item(), rel=1e-6)
    assert total.item() == pytest.approx(total_changed.item(), rel=1e-6)


def test_bone_length_loss_is_zero_under_rigid_motion(skeleton: Skeleton) -> None:
    target = random_motion(seed=4)
    rotation = rotation_matrix(torch.tensor([0.3, -1.0, 0.5]), 1.1)
    moved = target @ rotation.T + torch.tensor([1.0, -2.0, 0.5])
    assert bone_length_loss(moved, target, None, skeleton).item() == pytest.approx(0.0, abs=1e-9)
    stretched = target.clone()
    stretched[..., 3, :] = 2 * target[..., 3, :] - target[..., 2, :]  # head bone twice as long
    assert bone_length_loss(stretched, target, None, skeleton).item() > 0


def test_foot_contact_closed_form(skeleton: Skeleton) -> None:
    target = torch.zeros(1, 5, 20, 3)
    pred = target.clone()
    feet = list(skeleton.foot_joints)
    pred[0, :, feet, 0] = 0.2 * torch.arange(5.0)[:, None]  # predicted feet slide 0.2 per frame
    assert foot_contact_loss(pred, target, None, skeleton, 0.01).item() == pytest.approx(0.04)
    moving = target.clone()
    moving[0, :, feet, 1] = 0.5 * torch.arange(5.0)[:, None]  # the target's feet move: no contact
    assert foot_contact_loss(pred, moving, None, skeleton, 0.01).item() == 0.0


def test_skeleton_without_feet_skips_foot_contact() -> None:
    footless = Skeleton.from_parents([-1, 0, 1])
    motion = random_motion(joints=3)
    _, terms = diffusion_loss(motion, motion + 1, None, ALL_TERMS, footless)
    assert "foot_contact" not in terms and "bone_length" in terms


def test_positions_come_from_decode(skeleton: Skeleton) -> None:
    rotations = torch.randn(2, 8, 20, 6)
    decoded = []

    def decode(features: torch.Tensor) -> torch.Tensor:
        decoded.append(features.shape)
        return features[..., :3]

    weights = DiffusionLossWeights(bone_length=1.0)
    _, terms = diffusion_loss(rotations, rotations, None, weights, skeleton, decode)
    assert terms["bone_length"].item() == 0.0 and len(decoded) == 2
    with pytest.raises(ValueError, match="pass the representation's decode"):
        diffusion_loss(rotations, rotations, None, weights, skeleton)


def test_zero_weight_terms_are_skipped(skeleton: Skeleton) -> None:
    def decode(features: torch.Tensor) -> torch.Tensor:
        raise AssertionError("decode must not run when no positional term is weighted")

    motion = random_motion()
    total, terms = diffusion_loss(motion, motion + 1, None, DiffusionLossWeights(), skeleton, decode)
    assert set(terms) == {"reconstruction"} and total.item() == pytest.approx(1.0)


def test_refusals(skeleton: Skeleton) -> None:
    motion = random_motion()
    with pytest.raises(ValueError, match="needs a skeleton"):
        diffusion_loss(motion, motion, None, DiffusionLossWeights(bone_length=1.0))
    with pytest.raises(ValueError, match="mask must be"):
        diffusion_loss(motion, motion, torch.ones(3, 9, dtype=torch.bool), DiffusionLossWeights())
    with pytest.raises(ConfigError, match="velocity"):
        DiffusionLossWeights(velocity=-1.0)


def test_reconstruction_falls_when_fitting_a_tiny_denoiser(skeleton: Skeleton) -> None:
    torch.manual_seed(0)
    config = denoiser_preset("tiny", num_joints=20, num_channels=3, num_classes=4, dropout=0.0, cond_drop_prob=0.0)
    model = MotionDenoiser(config)
    generator = torch.Generator().manual_seed(5)
    x0 = torch.randn(8, 16, 20, 3, generator=generator)
    x_t = 0.6 * x0 + 0.8 * torch.randn(8, 16, 20, 3, generator=generator)
    timesteps = torch.randint(0, 1000, (8,), generator=generator)
    labels = torch.randint(0, 4, (8,), generator=generator)
    mask = lengths_mask([16, 16, 12, 12, 8, 8, 16, 4], 16)
    weights = DiffusionLossWeights(velocity=0.5, bone_length=0.5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(50):
        total, terms = diffusion_loss(model(x_t, timesteps, labels, mask=mask), x0, mask, weights, skeleton)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(terms["reconstruction"].item())
    assert history[-1] < 0.5 * history[0]

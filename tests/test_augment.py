"""Occlusions of the recognizer's input: what is dropped, how much, and what is left alone."""

from pathlib import Path

import pytest
import torch

from imdm.augment import InputDropConfig, drop_inputs
from imdm.training.cotrain import CoTrainer
from mdm.config import merge
from mdm.errors import ConfigError
from test_cotrain import _config
from toy_data import toy_archive


def _motion(batch: int = 256, frames: int = 16, joints: int = 20) -> torch.Tensor:
    return torch.rand(batch, frames, joints, 3) + 1.0  # no zeros of its own


def test_off_by_default_and_input_untouched() -> None:
    motion = _motion()
    assert drop_inputs(motion, InputDropConfig()) is motion
    copy = motion.clone()
    dropped = drop_inputs(motion, InputDropConfig(axis_prob=1.0, joint_prob=1.0))
    assert torch.equal(motion, copy) and dropped.shape == motion.shape and dropped.dtype == motion.dtype


def test_axis_drop_zeroes_exactly_one_axis_of_a_clip() -> None:
    torch.manual_seed(0)
    motion = _motion()
    dropped = drop_inputs(motion, InputDropConfig(axis_prob=1.0))
    zero_axes = (dropped == 0).all(dim=1).all(dim=1)  # [B, C]
    assert torch.equal(zero_axes.sum(1), torch.ones(len(motion), dtype=torch.long))
    assert torch.equal(dropped[~zero_axes[:, None, None, :].expand_as(motion)],
                       motion[~zero_axes[:, None, None, :].expand_as(motion)])
    assert zero_axes.sum(0).min() > 50  # every axis is drawn (256 clips, 3 axes)
    half = drop_inputs(motion, InputDropConfig(axis_prob=0.5))
    share = (half == 0).all(dim=1).all(dim=1).any(dim=1).float().mean()
    assert 0.35 < share < 0.65


def test_joint_drop_zeroes_a_set_of_joints_on_a_set_of_frames() -> None:
    torch.manual_seed(1)
    motion = _motion(frames=40)
    config = InputDropConfig(joint_prob=1.0, joints=(3, 5), frame_share=(0.25, 0.5))
    dropped = drop_inputs(motion, config)
    zero = (dropped == 0).all(dim=-1)  # [B, T, J]
    assert torch.equal((dropped == 0).any(dim=-1), zero)  # whole joints, never single coordinates
    joints, frames = zero.any(dim=1), zero.any(dim=2)  # [B, J], [B, T]
    assert torch.equal(zero, frames[:, :, None] & joints[:, None, :])  # a product of the two sets
    assert joints.sum(1).min() == 3 and joints.sum(1).max() == 5
    assert frames.sum(1).min() >= 10 and frames.sum(1).max() <= 20
    assert torch.equal(dropped[~zero], motion[~zero])


def test_every_person_of_a_clip_loses_the_same_joints() -> None:
    torch.manual_seed(2)
    motion = torch.rand(64, 2, 16, 20, 3) + 1.0
    dropped = drop_inputs(motion, InputDropConfig(axis_prob=1.0, joint_prob=1.0))
    assert dropped.shape == motion.shape
    assert torch.equal(dropped[:, 0] == 0, dropped[:, 1] == 0)


def test_bad_settings_are_refused() -> None:
    for bad in ({"axis_prob": 1.5}, {"joint_prob": -0.1}, {"joints": (0, 3)}, {"joints": (5, 4)},
                {"joints": (1, 2, 3)}, {"frame_share": (0.0, 0.5)}, {"frame_share": (0.5, 1.2)}):
        with pytest.raises(ConfigError, match="input_drop"):
            InputDropConfig(**bad)
    with pytest.raises(ConfigError, match="exceeds the clip's 20 joints"):
        drop_inputs(_motion(), InputDropConfig(joint_prob=1.0, joints=(4, 25)))


def test_cotraining_reads_the_section_and_trains_with_it(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz")
    config = _config(archive, epochs=1, generator={"enabled": False})
    config = merge(config, {"recognizer": {"input_drop": {"axis_prob": 0.5, "joint_prob": 0.5, "joints": [2, 4]}}})
    assert config.recognizer.input_drop == InputDropConfig(axis_prob=0.5, joint_prob=0.5, joints=(2, 4))
    trainer = CoTrainer(config, tmp_path / "run", progress=False)
    seen: list[torch.Tensor] = []
    trainer.recognizer.model.register_forward_pre_hook(lambda module, args: seen.append(args[0]) if module.training else None)
    trainer.fit()
    # joints zero on more than one frame (centring on the first frame zeroes the root there only)
    zero_joints = torch.cat([((x == 0).all(dim=-1).sum(dim=1) > 1).sum(dim=1) for x in seen])
    assert seen and (zero_joints > 0).any() and (zero_joints == 0).any()

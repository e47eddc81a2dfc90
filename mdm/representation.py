"""Motion representations (what the diffusion model sees) and normalisation statistics.

A :class:`MotionRepresentation` turns motions into features ``[B, T, J', C]`` and features
back into joint positions ``[B, T, J, 3]``; code downstream calls ``encode``/``decode`` and
never branches on the kind of data. One person per call: the caller folds persons into the
batch (``[B, M, T, J, C]`` -> ``[B * M, T, J, C]``).

Both representations put the root's trajectory relative to the clip's first frame on the
ground plane: the horizontal components of the first-frame root are subtracted from every
frame, the height (the skeleton's ``up_axis``) is kept absolute. Decoding therefore returns
the motion with its first-frame root moved horizontally to the origin.

- :class:`PositionRepresentation` (``positions``): the root joint's channels hold the root
  position as above, every other joint its position minus the root position; ``C = 3``.
- :class:`Rot6DRepresentation` (``rot6d``): for rotation-parameterised (SMPL) data, as in
  ACTOR/MDM: ``[B, T, J + 1, 6]``, joints ``0..J-1`` hold each joint's local rotation in 6D
  (:mod:`mdm.rotations`, first two columns), the extra slot holds the root translation in
  its first 3 channels and zeros in the rest. Decoding runs forward kinematics with rest
  offsets (:func:`rest_offsets_for`: estimated from the data, the shipped default, or SMPL files).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mdm.data.dataset import MotionDataset
from mdm.errors import ConfigError, DataFormatError
from mdm.kinematics import (
    default_smpl_rest_directions,
    default_smpl_rest_offsets,
    estimate_rest_offsets,
    forward_kinematics,
    smpl_rest_offsets_from_model,
)
from mdm.rotations import matrix_to_rotation_6d, rotation_6d_to_matrix
from mdm.skeleton import Skeleton


def _check_motion(tensor: torch.Tensor, num_joints: int, channels: int, name: str) -> None:
    if tensor.dim() != 4 or tuple(tensor.shape[2:]) != (num_joints, channels):
        raise ValueError(f"{name} must be [B, T, {num_joints}, {channels}], got {tuple(tensor.shape)}")


def _relative_to_start(root: torch.Tensor, up_axis: int) -> torch.Tensor:
    """Root trajectory ``[B, T, 3]`` minus the first frame's horizontal position (height kept)."""
    start = root[:, :1].clone()
    start[..., up_axis] = 0.0
    return root - start


@dataclass
class PoseParams:
    """Rotation-parameterised motion of one person per batch item.

    Attributes:
        rotations: local joint rotations, ``[B, T, J, 6]`` (6D, first two columns) or
            ``[B, T, J, 3, 3]`` (matrices); the root's is its global orientation.
        translation: root joint position ``[B, T, 3]``.
    """

    rotations: torch.Tensor
    translation: torch.Tensor


class MotionRepresentation(ABC):
    """Features ``[B, T, J', C]`` for a model, decodable to joint positions ``[B, T, J, 3]``."""

    name: str
    """Identifier saved with models, e.g. ``positions`` or ``rot6d``."""

    def __init__(self, skeleton: Skeleton) -> None:
        self.skeleton = skeleton

    @property
    @abstractmethod
    def num_channels(self) -> int:
        """``C``: channels per feature slot."""

    @property
    @abstractmethod
    def num_slots(self) -> int:
        """``J'``: feature slots per frame (joints, plus any extra slots)."""

    @abstractmethod
    def encode(self, motion: torch.Tensor | PoseParams) -> torch.Tensor:
        """Features ``[B, T, J', C]`` of a batch of motions."""

    @abstractmethod
    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Joint positions ``[B, T, J, 3]`` of features ``[B, T, J', C]``."""

    @abstractmethod
    def encode_dataset(self, dataset: MotionDataset) -> list[torch.Tensor]:
        """Features of every clip, float32 ``[T, J', C]`` (``[T, M, J', C]`` for M persons)."""


class PositionRepresentation(MotionRepresentation):
    """Joint positions as a root trajectory plus root-relative joints; ``C = 3``, ``J' = J``."""

    name = "positions"

    @property
    def num_channels(self) -> int:
        return 3

    @property
    def num_slots(self) -> int:
        return self.skeleton.num_joints

    def encode(self, motion: torch.Tensor | PoseParams) -> torch.Tensor:
        """Features ``[B, T, J, 3]`` of positions ``[B, T, J, 3]``."""
        if not isinstance(motion, torch.Tensor):
            raise ConfigError("the positions representation encodes joint positions, not rotation parameters")
        _check_motion(motion, self.skeleton.num_joints, 3, "positions")
        root_index = self.skeleton.root
        root = motion[:, :, root_index]
        relative = motion - root[:, :, None]
        trajectory = _relative_to_start(root, self.skeleton.up_axis)
        return relative.index_copy(2, torch.tensor([root_index], device=motion.device), trajectory[:, :, None])

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Positions ``[B, T, J, 3]`` of features ``[B, T, J, 3]`` (exact inverse of :meth:`encode`)."""
        _check_motion(features, self.skeleton.num_joints, 3, "features")
        root_index = self.skeleton.root
        root = features[:, :, root_index]
        positions = features + root[:, :, None]
        return positions.index_copy(2, torch.tensor([root_index], device=features.device), root[:, :, None])

    def encode_dataset(self, dataset: MotionDataset) -> list[torch.Tensor]:
        """Features of every clip: ``[T, J, 3]``, or ``[T, M, J, 3]`` with each person encoded alone."""
        features = []
        for clip in dataset.clips:
            positions = torch.as_tensor(clip, dtype=torch.float32)
            if positions.dim() == 3:
                features.append(self.encode(positions[None])[0])
            else:
                features.append(self.encode(positions.transpose(0, 1)).transpose(0, 1))
        return features


class Rot6DRepresentation(MotionRepresentation):
    """6D joint rotations plus a root-translation slot; ``C = 6``, ``J' = J + 1``.

    Args:
        skeleton: the kinematic tree of the rotations.
        rest_offsets: ``[J, 3]`` rest offsets for forward kinematics (see :func:`rest_offsets_for`).
    """

    name = "rot6d"

    def __init__(self, skeleton: Skeleton, rest_offsets: torch.Tensor) -> None:
        super().__init__(skeleton)
        rest_offsets = torch.as_tensor(rest_offsets, dtype=torch.float32)
        if tuple(rest_offsets.shape) != (skeleton.num_joints, 3):
            raise ValueError(f"rest_offsets must be [{skeleton.num_joints}, 3], got {tuple(rest_offsets.shape)}")
        self.rest_offsets = rest_offsets

    @property
    def num_channels(self) -> int:
        return 6

    @property
    def num_slots(self) -> int:
        return self.skeleton.num_joints + 1

    def encode(self, motion: torch.Tensor | PoseParams) -> torch.Tensor:
        """Features ``[B, T, J + 1, 6]`` of rotation parameters."""
        if not isinstance(motion, PoseParams):
            raise ConfigError("the rot6d representation encodes rotation parameters (PoseParams), not positions")
        num_joints = self.skeleton.num_joints
        rotations = motion.rotations
        if rotations.dim() == 5:
            _check_motion(rotations.flatten(-2), num_joints, 9, "rotation matrices")
            rotations = matrix_to_rotation_6d(rotations)
        _check_motion(rotations, num_joints, 6, "rotations")
        translation = motion.translation
        if tuple(translation.shape) != tuple(rotations.shape[:2]) + (3,):
            raise ValueError(f"translation must be [B, T, 3] matching rotations, got {tuple(translation.shape)}")
        trajectory = _relative_to_start(translation.to(rotations), self.skeleton.up_axis)
        slot = torch.cat((trajectory, torch.zeros_like(trajectory)), -1)
        return torch.cat((rotations, slot[:, :, None]), 2)

    def to_params(self, features: torch.Tensor) -> PoseParams:
        """Rotation matrices ``[B, T, J, 3, 3]`` (Gram-Schmidt of the 6D) and translation ``[B, T, 3]``."""
        _check_motion(features, self.num_slots, 6, "features")
        num_joints = self.skeleton.num_joints
        return PoseParams(rotation_6d_to_matrix(features[:, :, :num_joints]), features[:, :, num_joints, :3])

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Positions ``[B, T, J, 3]`` by forward kinematics of features ``[B, T, J + 1, 6]``."""
        params = self.to_params(features)
        return forward_kinematics(params.rotations, self.rest_offsets, params.translation, self.skeleton.parents)

    def encode_dataset(self, dataset: MotionDataset) -> list[torch.Tensor]:
        """Features ``[T, J + 1, 6]`` of every clip's ``rotations``/``translations``."""
        if dataset.rotations is None or dataset.translations is None:
            raise ConfigError(
                f"the rot6d representation needs rotation data, but this dataset ({dataset.source or 'no source'}) "
                "holds joint positions only; use the positions representation"
            )
        features = []
        for rotations, translation in zip(dataset.rotations, dataset.translations):
            params = PoseParams(torch.as_tensor(rotations, dtype=torch.float32)[None],
                                torch.as_tensor(translation, dtype=torch.float32)[None])
            features.append(self.encode(params)[0])
        return features


REST_OFFSET_SOURCES = ("default", "data", "smpl")


def rest_offsets_for(
    source: str,
    skeleton: Skeleton,
    dataset: MotionDataset | None = None,
    smpl_dir: str | Path | None = None,
    gender: str = "neutral",
) -> torch.Tensor:
    """Rest offsets ``[J, 3]`` for :class:`Rot6DRepresentation` of SMPL-parameterised data.

    Args:
        source: ``default`` (shipped approximate body), ``data`` (bone lengths measured on the
            dataset's joint positions along the default rest directions) or ``smpl`` (the
            user's SMPL model files in ``smpl_dir``).
        skeleton: must be the SMPL 24-joint tree.
        dataset: the data, for ``data``.
        smpl_dir: folder of ``SMPL_<GENDER>.pkl``, for ``smpl``.
        gender: SMPL gender, for ``smpl``.
    """
    if source not in REST_OFFSET_SOURCES:
        raise ConfigError(f"unknown rest offset source {source!r}; expected one of {', '.join(REST_OFFSET_SOURCES)}")
    if skeleton.num_joints != 24:
        raise ConfigError(f"rest offsets are defined for the SMPL 24-joint skeleton, not {skeleton.name}")
    if source == "default":
        return default_smpl_rest_offsets()
    if source == "data":
        if dataset is None or len(dataset) == 0 or dataset.is_multi_person:
            raise ConfigError("rest offsets from data need a non-empty one-person dataset")
        return estimate_rest_offsets(dataset.clips, skeleton.parents, default_smpl_rest_directions())
    if smpl_dir is None:
        raise ConfigError("rest offsets from SMPL need smpl_dir, the folder holding SMPL_<GENDER>.pkl")
    return smpl_rest_offsets_from_model(smpl_dir, gender)


@dataclass
class NormStats:
    """Per-slot, per-channel mean and standard deviation of features.

    Attributes:
        mean: float32 ``[J', C]``.
        std: float32 ``[J', C]``, every entry at least the ``eps`` used when fitting.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __post_init__(self) -> None:
        self.mean = torch.as_tensor(self.mean, dtype=torch.float32)
        self.std = torch.as_tensor(self.std, dtype=torch.float32)
        if self.mean.dim() != 2 or self.mean.shape != self.std.shape:
            raise ValueError(f"mean and std must both be [J, C], "
                             f"got {tuple(self.mean.shape)} and {tuple(self.std.shape)}")
        if not bool(torch.all(self.std > 0)):
            raise ValueError("std must be positive")

    @classmethod
    def fit(cls, clips: Sequence[torch.Tensor | np.ndarray], eps: float = 1e-5) -> NormStats:
        """Statistics over every frame of every clip.

        Args:
            clips: feature clips ``[..., J', C]`` (e.g. ``[T, J', C]``), same ``J'`` and ``C``.
            eps: floor of the standard deviation (constant channels, e.g. the zero padding of
                the rot6d translation slot, get ``eps`` and normalise to 0).
        """
        if len(clips) == 0:
            raise ValueError("cannot fit normalisation statistics on no clips")
        tails = {tuple(clip.shape[-2:]) for clip in clips}
        if len(tails) != 1:
            raise ValueError(f"clips must share their last two dimensions [J, C], got {sorted(tails)}")
        (num_slots, channels), = tails
        frames = torch.cat([torch.as_tensor(clip, dtype=torch.float64).reshape(-1, num_slots, channels)
                            for clip in clips])
        return cls(frames.mean(0), frames.std(0, unbiased=False).clamp_min(eps))

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        """``(features - mean) / std`` for features ``[..., J', C]``."""
        return (features - self.mean.to(features)) / self.std.to(features)

    def denormalize(self, features: torch.Tensor) -> torch.Tensor:
        """``features * std + mean``, the inverse of :meth:`normalize`."""
        return features * self.std.to(features) + self.mean.to(features)

    def to_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Plain contiguous CPU tensors ``{prefix}mean`` and ``{prefix}std``, e.g. for safetensors."""
        return {f"{prefix}mean": self.mean.detach().cpu().contiguous().clone(),
                f"{prefix}std": self.std.detach().cpu().contiguous().clone()}

    @classmethod
    def from_dict(cls, tensors: Mapping[str, torch.Tensor], prefix: str = "") -> NormStats:
        """Statistics from :meth:`to_dict` output (``KeyError`` names a missing key)."""
        missing = [f"{prefix}{key}" for key in ("mean", "std") if f"{prefix}{key}" not in tensors]
        if missing:
            raise KeyError(f"normalisation statistics lack {', '.join(missing)}")
        return cls(tensors[f"{prefix}mean"], tensors[f"{prefix}std"])

    def save(self, path: str | Path) -> None:
        """Write a safetensors file with ``mean`` and ``std``."""
        from safetensors.torch import save_file

        save_file(self.to_dict(), str(path))

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        """Read statistics written by :meth:`save`; a bad file raises DataFormatError."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise DataFormatError(path, "no such normalisation statistics file")
        try:
            tensors = load_file(str(path))
            return cls.from_dict(tensors)
        except (SafetensorError, KeyError, ValueError, OSError) as exc:
            raise DataFormatError(path, f"not valid normalisation statistics ({exc})") from exc

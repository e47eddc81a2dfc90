"""Torch datasets and loaders of fixed-length clips for training and evaluation.

Items are position clips (any motion representation is applied later, on the batch):
``motion`` ``[T, J, 3]`` or, with several persons, ``[M, T, J, 3]`` (persons first, so a
batch is ``[B, M, T, J, 3]``), a frame ``mask`` ``[T]`` (True = valid frame), ``label``,
``length`` (valid frames) and the clip's ``index`` in the dataset.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, WeightedRandomSampler

from mdm.data.dataset import MotionDataset
from mdm.data.transforms import ClipPipelineConfig, prepare_clip
from mdm.errors import ConfigError


class ClipDataset(Dataset):
    """A :class:`MotionDataset` (one split) as fixed-length clips through :func:`prepare_clip`.

    The randomness of item ``index`` comes from ``(seed, epoch, index)`` alone, so an item
    is the same whatever the worker, order or batch; :meth:`set_epoch` gives each epoch new
    augmentations. In evaluation mode (``train=False``) items do not depend on the seed.
    """

    def __init__(self, dataset: MotionDataset, config: ClipPipelineConfig, train: bool, seed: int = 0) -> None:
        self.dataset = dataset
        self.config = config
        self.train = train
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the augmentations of ``epoch`` from now on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        clip, valid = prepare_clip(self.dataset.clips[index], self.dataset.skeleton, self.config, self.train, rng)
        motion = torch.from_numpy(clip)
        if motion.ndim == 4:
            motion = motion.permute(1, 0, 2, 3).contiguous()
        mask = torch.zeros(clip.shape[0], dtype=torch.bool)
        mask[:valid] = True
        return {
            "motion": motion,
            "mask": mask,
            "label": torch.tensor(int(self.dataset.labels[index]), dtype=torch.int64),
            "length": torch.tensor(valid, dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }


def collate_clips(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items into a batch, zero-padding motions and masks to the longest clip.

    Returns:
        ``motion`` float32 ``[B, T, J, 3]`` or ``[B, M, T, J, 3]``, ``mask`` bool ``[B, T]``,
        ``label``, ``length``, ``index`` int64 ``[B]``.
    """
    if not items:
        raise ValueError("cannot collate an empty list of clips")
    frames = max(item["mask"].shape[0] for item in items)
    first = items[0]["motion"]
    time_axis = first.ndim - 3
    motion = first.new_zeros((len(items),) + first.shape[:time_axis] + (frames,) + first.shape[time_axis + 1:])
    mask = torch.zeros((len(items), frames), dtype=torch.bool)
    for b, item in enumerate(items):
        length = item["mask"].shape[0]
        motion[b].narrow(time_axis, 0, length).copy_(item["motion"])
        mask[b, :length] = item["mask"]
    batch = {"motion": motion, "mask": mask}
    for key in ("label", "length", "index"):
        batch[key] = torch.stack([item[key] for item in items])
    return batch


def balanced_sampler(labels: np.ndarray, num_samples: int, seed: int) -> WeightedRandomSampler:
    """Draws clips with replacement so every class is equally likely, seeded.

    Args:
        labels: int ``[N]`` class of each clip.
        num_samples: draws per epoch.
    """
    counts = np.bincount(labels)
    weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(weights, num_samples=num_samples, replacement=True, generator=generator)


def make_loader(
    dataset: MotionDataset,
    config: ClipPipelineConfig,
    batch_size: int,
    train: bool,
    seed: int,
    num_workers: int = 0,
    balanced: bool = False,
) -> DataLoader:
    """A DataLoader of :class:`ClipDataset` batches (see :func:`collate_clips`).

    Training shuffles with a generator seeded by ``seed`` (or, with ``balanced``, draws
    class-balanced with replacement) and drops the last incomplete batch; evaluation keeps
    the dataset order and every clip. Call ``loader.dataset.set_epoch(epoch)`` before each epoch.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if balanced and not train:
        raise ConfigError("a class-balanced sampler is for training only; evaluation must see every clip once")
    if train and len(dataset) < batch_size:
        raise ConfigError(f"batch_size {batch_size} exceeds the {len(dataset)} training clips (the last batch is dropped)")
    clips = ClipDataset(dataset, config, train=train, seed=seed)
    sampler: Sampler[int] | None = balanced_sampler(dataset.labels, len(dataset), seed) if balanced else None
    generator = torch.Generator().manual_seed(seed) if train and not balanced else None
    return DataLoader(
        clips,
        batch_size=batch_size,
        shuffle=train and not balanced,
        sampler=sampler,
        generator=generator,
        drop_last=train,
        num_workers=num_workers,
        collate_fn=collate_clips,
    )

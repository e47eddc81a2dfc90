"""Deterministic, shardable batch order: the key to resuming a run exactly."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices whose order depends only on ``(seed, epoch)``.

    Each process of a multi-process run takes its own slice of every global batch, so the
    union over processes is the same as a single process with the global batch size. Batch
    ``i`` of epoch ``e`` is always the same, so a resumed run skips exactly the batches it
    had done (``start_batch``).

    Args:
        labels: int ``[N]`` class of each clip (used by ``balanced``).
        batch_size: global batch size (all processes together).
        seed: base seed.
        balanced: draw clips with probability inverse to their class frequency (with
            replacement) instead of a permutation.
        groups: int ``[N]`` group of each clip (e.g. the views of one performance), or None. With
            groups the epoch order is a random order of the groups, each group's clips next to
            each other (in random order), so that they share a batch unless they straddle a
            batch boundary. Not with ``balanced``.
        process_index, num_processes: this process's slice of each batch.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, seed: int, *, balanced: bool = False,
                 groups: np.ndarray | None = None, process_index: int = 0, num_processes: int = 1) -> None:
        if balanced and groups is not None:
            raise ValueError("a class-balanced batch order cannot also keep groups together")
        if groups is not None and len(groups) != len(labels):
            raise ValueError(f"{len(groups)} groups for {len(labels)} clips")
        if batch_size % num_processes:
            raise ValueError(f"batch size {batch_size} is not divisible by {num_processes} processes")
        if len(labels) < batch_size:
            raise ValueError(f"batch size {batch_size} exceeds the {len(labels)} training clips")
        self.labels = np.asarray(labels)
        self.batch_size = batch_size
        self.seed = seed
        self.balanced = balanced
        self.groups = None if groups is None else torch.as_tensor(np.unique(groups, return_inverse=True)[1].ravel())
        self.process_index = process_index
        self.num_processes = num_processes
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate epoch ``epoch`` from its batch ``start_batch`` on."""
        self.epoch = epoch
        self.start_batch = start_batch

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size

    def epoch_order(self) -> torch.Tensor:
        """int64 ``[len(self) * batch_size]`` indices of this epoch, in order."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        count = len(self) * self.batch_size
        if self.balanced:
            weights = torch.as_tensor(1.0 / np.bincount(self.labels)[self.labels], dtype=torch.float64)
            return torch.multinomial(weights, count, replacement=True, generator=generator)
        order = torch.randperm(len(self.labels), generator=generator)
        if self.groups is not None:
            group_rank = torch.randperm(int(self.groups.max()) + 1, generator=generator)
            order = order[torch.argsort(group_rank[self.groups[order]], stable=True)]
        return order[:count]

    def __iter__(self) -> Iterator[list[int]]:
        order = self.epoch_order().view(len(self), self.batch_size)
        local = self.batch_size // self.num_processes
        start = self.process_index * local
        for batch in order[self.start_batch:]:
            yield batch[start:start + local].tolist()

"""The seeded, shardable batch order, with and without groups kept together."""

import numpy as np
import pytest
import torch

from mdm.training.batches import EpochBatchSampler

LABELS = np.arange(40) % 4


def epoch_batches(sampler: EpochBatchSampler, epoch: int, start_batch: int = 0) -> list[list[int]]:
    sampler.set_epoch(epoch, start_batch)
    return list(sampler)


def test_an_epoch_is_a_seeded_permutation_that_processes_share() -> None:
    sampler = EpochBatchSampler(LABELS, 8, seed=3)
    batches = epoch_batches(sampler, 0)
    assert len(batches) == len(sampler) == 5
    assert sorted(sum(batches, [])) == list(range(40))
    assert batches == epoch_batches(EpochBatchSampler(LABELS, 8, seed=3), 0)
    assert batches != epoch_batches(sampler, 1)
    assert epoch_batches(sampler, 0, start_batch=2) == batches[2:]
    halves = [epoch_batches(EpochBatchSampler(LABELS, 8, seed=3, process_index=i, num_processes=2), 0)
              for i in range(2)]
    assert [a + b for a, b in zip(*halves)] == batches


def test_groups_stay_next_to_each_other_in_a_random_order() -> None:
    groups = np.repeat(np.arange(20), 2)[np.random.default_rng(0).permutation(40)]
    sampler = EpochBatchSampler(LABELS, 8, seed=3, groups=groups)
    orders = []
    for epoch in range(3):
        order = sum(epoch_batches(sampler, epoch), [])
        assert sorted(order) == list(range(40))
        assert all(groups[a] == groups[b] for a, b in zip(order[0::2], order[1::2]))  # pairs, batch 8 is even
        orders.append(order)
    assert orders[0] != orders[1] != orders[2]
    assert orders[0] == sum(epoch_batches(EpochBatchSampler(LABELS, 8, seed=3, groups=groups), 0), [])


def test_groups_leave_the_order_without_them_unchanged() -> None:
    plain = EpochBatchSampler(LABELS, 8, seed=5)
    expected = torch.randperm(40, generator=torch.Generator().manual_seed(5 * 100_003)).view(5, 8).tolist()
    assert epoch_batches(plain, 0) == expected


def test_refuses_groups_with_a_balanced_draw_or_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="balanced"):
        EpochBatchSampler(LABELS, 8, seed=0, balanced=True, groups=np.zeros(40, dtype=int))
    with pytest.raises(ValueError, match="39 groups for 40 clips"):
        EpochBatchSampler(LABELS, 8, seed=0, groups=np.zeros(39, dtype=int))

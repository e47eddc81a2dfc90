"""Torch datasets and loaders of clips: item layout, masks, seeded randomness, batching, balance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdm.data.dataset import MotionDataset
from mdm.data.loader import ClipDataset, collate_clips, make_loader
from mdm.data.transforms import ClipPipelineConfig, prepare_clip
from mdm.errors import ConfigError
from mdm.skeleton import load_skeleton

SKELETON = load_skeleton("kinect_v1")
AUGMENT = ClipPipelineConfig(num_frames=12, sampling="crop", rotation_deg=20.0, scale_range=(0.9, 1.1),
                             speed_range=(0.8, 1.2))


def make_dataset(lengths: list[int], labels: list[int] | None = None, persons: int | None = None) -> MotionDataset:
    rng = np.random.default_rng(0)
    extra = () if persons is None else (persons,)
    clips = [rng.normal(size=(t,) + extra + (SKELETON.num_joints, 3)).astype(np.float32) for t in lengths]
    labels = labels if labels is not None else [i % 3 for i in range(len(lengths))]
    return MotionDataset(clips=clips, labels=np.array(labels), class_names=["a", "b", "c"], skeleton=SKELETON)


def test_items_have_the_documented_layout_and_mask() -> None:
    items = ClipDataset(make_dataset([20, 7]), AUGMENT, train=False)
    item = items[1]
    assert item["motion"].shape == (12, 20, 3) and item["motion"].dtype == torch.float32
    assert item["mask"].dtype == torch.bool and item["mask"].tolist() == [True] * 7 + [False] * 5
    assert item["length"].item() == 7 and item["index"].item() == 1 and item["label"].item() == 1
    assert item["label"].dtype == item["length"].dtype == item["index"].dtype == torch.int64
    assert not item["motion"][7:].any()


def test_multi_person_items_put_persons_first() -> None:
    dataset = make_dataset([15], persons=2)
    item = ClipDataset(dataset, AUGMENT, train=False)[0]
    expected, _ = prepare_clip(dataset.clips[0], SKELETON, AUGMENT, False, np.random.default_rng(0))
    assert item["motion"].shape == (2, 12, 20, 3)
    np.testing.assert_array_equal(item["motion"].numpy(), expected.transpose(1, 0, 2, 3))
    assert collate_clips([item, item])["motion"].shape == (2, 2, 12, 20, 3)


def test_training_items_are_reproducible_per_seed_epoch_and_index() -> None:
    dataset = make_dataset([30, 30])
    first, again, other = (ClipDataset(dataset, AUGMENT, train=True, seed=s) for s in (4, 4, 5))
    torch.testing.assert_close(first[1]["motion"], again[1]["motion"], rtol=0, atol=0)
    assert not torch.allclose(first[1]["motion"], other[1]["motion"])
    before = first[1]["motion"]
    first.set_epoch(1)
    assert not torch.allclose(before, first[1]["motion"])
    again.set_epoch(1)
    torch.testing.assert_close(first[1]["motion"], again[1]["motion"], rtol=0, atol=0)


def test_evaluation_items_do_not_depend_on_seed_or_epoch() -> None:
    dataset = make_dataset([30, 9])
    a, b = ClipDataset(dataset, AUGMENT, train=False, seed=1), ClipDataset(dataset, AUGMENT, train=False, seed=2)
    b.set_epoch(7)
    for index in range(2):
        torch.testing.assert_close(a[index]["motion"], b[index]["motion"], rtol=0, atol=0)


def test_collate_pads_and_masks_clips_of_different_lengths() -> None:
    def item(frames: int, index: int) -> dict[str, torch.Tensor]:
        return {"motion": torch.ones(frames, 4, 3), "mask": torch.ones(frames, dtype=torch.bool),
                "label": torch.tensor(index), "length": torch.tensor(frames), "index": torch.tensor(index)}

    batch = collate_clips([item(5, 0), item(3, 1)])
    assert batch["motion"].shape == (2, 5, 4, 3)
    assert batch["mask"].tolist() == [[True] * 5, [True] * 3 + [False] * 2]
    assert batch["motion"][1, 3:].abs().sum() == 0 and batch["motion"][1, :3].eq(1).all()
    assert batch["length"].tolist() == [5, 3] and batch["index"].tolist() == [0, 1]
    with pytest.raises(ValueError):
        collate_clips([])


def test_training_loader_shuffles_reproducibly_and_drops_the_last_batch() -> None:
    dataset = make_dataset([14] * 10)
    config = ClipPipelineConfig(num_frames=8)

    def order(seed: int) -> list[int]:
        loader = make_loader(dataset, config, batch_size=4, train=True, seed=seed)
        return [i for batch in loader for i in batch["index"].tolist()]

    assert order(0) == order(0) and len(order(0)) == 8
    assert order(0) != order(1) or order(0) != order(2)
    loader = make_loader(dataset, config, batch_size=4, train=False, seed=0)
    batches = list(loader)
    assert [i for b in batches for i in b["index"].tolist()] == list(range(10))
    assert batches[0]["motion"].shape == (4, 8, 20, 3) and batches[0]["mask"].all()


def test_balanced_sampler_draws_classes_about_equally() -> None:
    labels = [0] * 90 + [1] * 6 + [2] * 4
    dataset = make_dataset([3] * 100, labels=labels)
    config = ClipPipelineConfig(num_frames=3)

    def drawn(seed: int) -> list[int]:
        loader = make_loader(dataset, config, batch_size=50, train=True, seed=seed, balanced=True)
        return [label for _ in range(4) for batch in loader for label in batch["label"].tolist()]

    counts = np.bincount(drawn(0), minlength=3)
    assert counts.sum() == 400 and counts.min() > 90
    assert drawn(0) == drawn(0)


def test_loader_refusals() -> None:
    dataset = make_dataset([5] * 3)
    config = ClipPipelineConfig(num_frames=4)
    with pytest.raises(ConfigError, match="balanced"):
        make_loader(dataset, config, batch_size=2, train=False, seed=0, balanced=True)
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(dataset, config, batch_size=4, train=True, seed=0)
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(dataset, config, batch_size=0, train=False, seed=0)

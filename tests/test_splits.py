"""Validation splits carved from the training clips: grouped, stratified, seeded, test untouched."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from format_files import real_nw_ucla_dir

from mdm.data.dataset import MotionDataset
from mdm.data.splits import (
    carve_validation_split,
    keep_training_share,
    performance_groups,
    performance_id,
    split_counts,
    validation_grouping,
    view_fold,
)
from mdm.errors import ConfigError, UserError
from mdm.skeleton import Skeleton

SKELETON = Skeleton.from_parents([-1, 0, 1], ["root", "hip_left", "hip_right"])


def make_dataset(
    clips_per_subject: dict[int, int], num_classes: int = 4, views: int = 3, known_subjects: bool = True,
    view_tags: bool = True,
) -> MotionDataset:
    """Clips ``aCC_sSS_eEE_vVV``: per subject and class several episodes seen from each view;
    views 1.. ``views - 1`` are ``train``, the last view is ``test``."""
    labels, subjects, view_ids, clip_ids, split = [], [], [], [], []
    for subject, episodes in clips_per_subject.items():
        for label, episode, view in itertools.product(range(num_classes), range(episodes), range(1, views + 1)):
            labels.append(label)
            subjects.append(subject if known_subjects else -1)
            view_ids.append(view)
            tag = f"_v{view:02d}" if view_tags else f"_c{view:02d}"
            clip_ids.append(f"a{label:02d}_s{subject:02d}_e{episode:02d}{tag}")
            split.append("test" if view == views else "train")
    clips = [np.full((5, 3, 3), i + 1.0, np.float32) for i in range(len(labels))]
    return MotionDataset(clips=clips, labels=np.array(labels), class_names=[f"c{k}" for k in range(num_classes)],
                         skeleton=SKELETON, subjects=np.array(subjects), views=np.array(view_ids),
                         clip_ids=clip_ids, split=np.array(split), source="test")


def val_share(carved: MotionDataset, original: MotionDataset) -> float:
    return split_counts(carved)["val"] / split_counts(original)["train"]


def check_common(original: MotionDataset, carved: MotionDataset) -> None:
    """Test clips untouched, only train clips may become val, every class in val and in train."""
    test = original.split == "test"
    np.testing.assert_array_equal(carved.split[test], original.split[test])
    assert set(carved.split[~test]) == {"train", "val"}
    assert original.split is not carved.split and "val" not in set(original.split)
    for name in ("train", "val"):
        assert all(count > 0 for count in carved.split_subset(name).class_counts().values())


def test_subject_split_is_subject_disjoint_and_near_the_fraction() -> None:
    dataset = make_dataset({s: 2 for s in range(1, 9)})
    assert validation_grouping(dataset, fraction=0.25) == "subject"
    carved = carve_validation_split(dataset, fraction=0.25, seed=0)
    check_common(dataset, carved)
    val_subjects = set(carved.subjects[carved.split == "val"])
    assert val_subjects.isdisjoint(set(carved.subjects[carved.split == "train"]))
    assert val_share(carved, dataset) == pytest.approx(0.25)


def test_too_few_subjects_carve_whole_performances_near_the_fraction() -> None:
    """Five training subjects: one of them would be a fifth of the clips, twice a 0.1 share."""
    dataset = make_dataset({s: 2 for s in range(1, 6)})
    assert validation_grouping(dataset, fraction=0.1) == "performance"
    assert validation_grouping(dataset, fraction=0.2) == "subject"
    carved = carve_validation_split(dataset, fraction=0.1, seed=0)
    check_common(dataset, carved)
    assert val_share(carved, dataset) == pytest.approx(0.1)
    assert len(set(carved.subjects[carved.split == "val"])) > 1


def test_subject_choice_is_close_to_the_best_possible_share() -> None:
    sizes = {1: 1, 2: 3, 3: 2, 4: 5, 5: 1, 6: 4, 7: 2}
    dataset = make_dataset(sizes, num_classes=3)
    total = sum(sizes.values())
    best = min(abs(sum(sizes[s] for s in group) / total - 0.2)
               for r in range(1, len(sizes)) for group in itertools.combinations(sizes, r))
    for seed in range(4):
        carved = carve_validation_split(dataset, fraction=0.2, seed=seed)
        check_common(dataset, carved)
        assert abs(val_share(carved, dataset) - 0.2) <= best + 0.03


def test_split_is_seeded() -> None:
    dataset = make_dataset({s: 1 for s in range(1, 11)})
    first = carve_validation_split(dataset, fraction=0.1, seed=3)
    np.testing.assert_array_equal(first.split, carve_validation_split(dataset, fraction=0.1, seed=3).split)
    chosen = {tuple(carve_validation_split(dataset, fraction=0.1, seed=s).split) for s in range(8)}
    assert len(chosen) > 1


def test_performance_grouping_keeps_view_twins_together() -> None:
    dataset = make_dataset({s: 3 for s in range(1, 6)}, known_subjects=False)
    assert validation_grouping(dataset) == "performance"
    carved = carve_validation_split(dataset, fraction=0.2, seed=1)
    check_common(dataset, carved)
    side: dict[str, set[str]] = {}
    for clip_id, name in zip(carved.clip_ids, carved.split):
        if name != "test":
            side.setdefault(performance_id(clip_id), set()).add(str(name))
    assert all(len(names) == 1 for names in side.values())
    assert set(carved.split_subset("val").class_counts().values()) == {2 * 3}
    assert val_share(carved, dataset) == pytest.approx(0.2)


def test_per_clip_split_is_stratified_by_class() -> None:
    dataset = make_dataset({s: 5 for s in range(1, 3)}, known_subjects=False, view_tags=False)
    assert validation_grouping(dataset) == "clip"
    carved = carve_validation_split(dataset, fraction=0.1, seed=0)
    check_common(dataset, carved)
    assert set(carved.split_subset("val").class_counts().values()) == {2}


def test_performance_groups_number_the_performances() -> None:
    groups = performance_groups(["a01_s01_e00_v01", "a02_s01_e00_v01", "a01_s01_e00_v03", "x"])
    assert groups.tolist() == [0, 1, 0, 2]


def test_performance_id_removes_only_a_trailing_view_tag() -> None:
    assert performance_id("a01_s01_e00_v01") == "a01_s01_e00"
    assert performance_id("a01_v01_e00") == "a01_v01_e00"


def test_refusals() -> None:
    dataset = make_dataset({1: 1, 2: 1})
    no_split = make_dataset({1: 1, 2: 1})
    no_split.split = None
    with pytest.raises(UserError, match="no train/test split"):
        carve_validation_split(no_split)
    with pytest.raises(UserError, match="no train/test split"):
        split_counts(no_split)
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match="fraction"):
            carve_validation_split(dataset, fraction=fraction)
    with pytest.raises(UserError, match="already has"):
        carve_validation_split(carve_validation_split(dataset, fraction=0.5))
    assert split_counts(dataset) == {"train": 16, "val": 0, "test": 8}


def test_training_share_keeps_whole_performances_of_every_class_and_all_held_out_clips() -> None:
    dataset = carve_validation_split(make_dataset({s: 4 for s in range(1, 6)}), fraction=0.2, seed=0)
    reduced = keep_training_share(dataset, fraction=0.25, seed=2)
    for name in ("val", "test"):
        assert sorted(reduced.split_subset(name).clip_ids) == sorted(dataset.split_subset(name).clip_ids)
    train_ids = reduced.split_subset("train").clip_ids
    assert set(train_ids) < set(dataset.split_subset("train").clip_ids)
    assert len(train_ids) / split_counts(dataset)["train"] == pytest.approx(0.25)
    views_per_performance = {performance_id(c): sum(performance_id(d) == performance_id(c) for d in train_ids)
                             for c in train_ids}
    assert set(views_per_performance.values()) == {2}
    assert set(reduced.split_subset("train").class_counts().values()) == {0.25 * 16 * 2}
    assert keep_training_share(dataset, 0.25, seed=2).clip_ids == reduced.clip_ids
    assert keep_training_share(dataset, 0.25, seed=3).clip_ids != reduced.clip_ids
    one_performance = dataset.subset([i for i, c in enumerate(dataset.clip_ids)
                                      if not (c.startswith("a00_") and dataset.split[i] == "train" and "_s01_e00" not in c)])
    assert keep_training_share(one_performance, 0.25, seed=2).split_subset("train").class_counts()["c0"] == 2
    for fraction in (0.0, 1.0):
        with pytest.raises(ConfigError, match="training share"):
            keep_training_share(dataset, fraction)


def test_data_config_train_fraction_reduces_the_training_split_only() -> None:
    from mdm.data.sources import DataConfig, load_training_data

    full = load_training_data(DataConfig())
    reduced = load_training_data(DataConfig(train_fraction=0.5))
    assert split_counts(reduced)["train"] < split_counts(full)["train"]
    assert {k: v for k, v in split_counts(reduced).items() if k != "train"} == \
        {k: v for k, v in split_counts(full).items() if k != "train"}
    with pytest.raises(ConfigError, match="train_fraction"):
        DataConfig(train_fraction=0.0)


def test_nw_ucla_validation_split_is_subject_disjoint() -> None:
    if not real_nw_ucla_dir().is_dir():
        pytest.skip("NW-UCLA data not found (set NW_UCLA_DIR)")
    reader = pytest.importorskip("mdm.data.readers.nw_ucla")
    dataset = reader.read_nw_ucla(real_nw_ucla_dir())
    carved = carve_validation_split(dataset, fraction=0.1, seed=0)
    check_common(dataset, carved)
    assert set(carved.subjects[carved.split == "val"]).isdisjoint(carved.subjects[carved.split == "train"])
    assert set(carved.views[carved.split == "val"]) <= {1, 2}
    assert abs(val_share(carved, dataset) - 0.1) < 0.02


def test_view_fold_keeps_two_views_and_never_the_third() -> None:
    dataset = make_dataset({1: 2, 2: 2}, views=3)
    fold = view_fold(dataset, [1], [2])
    assert set(fold.views.tolist()) == {1, 2}
    assert (fold.split[fold.views == 1] == "train").all() and (fold.split[fold.views == 2] == "test").all()
    assert split_counts(fold) == {"train": int((dataset.views == 1).sum()), "val": 0,
                                  "test": int((dataset.views == 2).sum())}
    carved = carve_validation_split(fold)
    assert (carved.views[carved.split == "val"] == 1).all()
    with pytest.raises(ConfigError, match="both"):
        view_fold(dataset, [1, 2], [2])
    with pytest.raises(UserError, match=r"view\(s\) \[4\]"):
        view_fold(dataset, [1], [4])

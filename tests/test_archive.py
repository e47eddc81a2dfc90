"""The motion archive: round trips, every refusal of docs/data_format.md, atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mdm.data.archive import REQUIRED_KEYS, read_archive, write_archive
from mdm.data.dataset import MotionDataset
from mdm.errors import DataFormatError
from mdm.skeleton import Skeleton, load_skeleton


def _dataset(multi_person: bool = False, seed: int = 0) -> MotionDataset:
    """Three clips of 2, 3 and 4 frames; multi-person clips have an absent second person."""
    rng = np.random.default_rng(seed)
    skeleton = load_skeleton("kinect_v2" if multi_person else "kinect_v1")
    shape = (2, skeleton.num_joints, 3) if multi_person else (skeleton.num_joints, 3)
    clips = [rng.normal(size=(t, *shape)).astype(np.float32) for t in (2, 3, 4)]
    if multi_person:
        clips[1][:, 1] = 0.0
    return MotionDataset(
        clips=clips,
        labels=np.array([0, 2, 1]),
        class_names=["wave", "sit down", "throw"],
        skeleton=skeleton,
        subjects=np.array([1, 2, -1]),
        views=np.array([3, -1, 1]),
        clip_ids=["c0", "c1", "c2"],
        split=np.array(["train", "val", "test"]),
        fps=30.0,
        source="made up",
        styles=np.array([1, 0, 1]),
        style_names=["calm", "brisk"],
    )


@pytest.mark.parametrize("multi_person", [False, True], ids=["single", "multi-person"])
def test_round_trip_keeps_every_field(tmp_path: Path, multi_person: bool) -> None:
    original = _dataset(multi_person)
    path = write_archive(original, tmp_path / "data.npz")
    loaded = read_archive(path)
    assert len(loaded) == 3 and loaded.is_multi_person == multi_person
    for before, after in zip(original.clips, loaded.clips):
        assert after.dtype == np.float32
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(loaded.labels, original.labels)
    np.testing.assert_array_equal(loaded.subjects, original.subjects)
    np.testing.assert_array_equal(loaded.views, original.views)
    assert loaded.class_names == original.class_names and loaded.clip_ids == original.clip_ids
    assert loaded.split.tolist() == ["train", "val", "test"]
    assert loaded.fps == 30.0 and loaded.source == "made up"
    assert loaded.styles.tolist() == [1, 0, 1] and loaded.style_names == ["calm", "brisk"]
    assert loaded.skeleton == original.skeleton
    assert loaded.subset([2, 0]).styles.tolist() == [1, 1]


def test_round_trip_without_optional_fields_and_with_a_custom_skeleton(tmp_path: Path) -> None:
    skeleton = Skeleton.from_parents([-1, 0, 1], ["root", "hand_left", "tip_left"], name="tiny")
    clips = [np.arange(9, dtype=np.float32).reshape(1, 3, 3)]
    original = MotionDataset(clips=clips, labels=[0], class_names=["only"], skeleton=skeleton)
    loaded = read_archive(write_archive(original, tmp_path / "tiny.npz"))
    assert loaded.split is None and loaded.fps is None and loaded.styles is None and loaded.style_names is None
    assert loaded.skeleton.parents == (-1, 0, 1) and loaded.skeleton.joint_names == ("root", "hand_left", "tip_left")
    np.testing.assert_array_equal(loaded.clips[0], clips[0])


def _valid_arrays() -> dict[str, np.ndarray]:
    """A valid archive's arrays: 2 clips (2 + 1 frames) of a 3-joint chain, every optional key."""
    return {
        "joints": np.zeros((3, 3, 3), np.float32),
        "lengths": np.array([2, 1], np.int64),
        "labels": np.array([0, 1], np.int64),
        "class_names": np.array(["a", "b"]),
        "parents": np.array([-1, 0, 1], np.int64),
        "joint_names": np.array(["root", "mid", "tip"]),
        "subjects": np.array([1, 2], np.int64),
        "views": np.array([1, 1], np.int64),
        "clip_ids": np.array(["x", "y"]),
        "split": np.array(["train", "test"]),
        "fps": np.array(30.0),
        "source": np.array("test"),
        "styles": np.array([0, 1], np.int64),
        "style_names": np.array(["calm", "brisk"]),
    }


def _set(key: str, value: object) -> Callable[[dict[str, np.ndarray]], None]:
    return lambda arrays: arrays.__setitem__(key, value)


def _with_nan(arrays: dict[str, np.ndarray]) -> None:
    arrays["joints"][1, 2, 0] = np.nan


def _with_inf(arrays: dict[str, np.ndarray]) -> None:
    arrays["joints"][0, 0, 1] = -np.inf


REFUSALS: dict[str, tuple[Callable[[dict[str, np.ndarray]], None], str]] = {
    **{f"missing-{key}": ((lambda arrays, key=key: arrays.pop(key)), key) for key in REQUIRED_KEYS},
    "joints-int": (_set("joints", np.zeros((3, 3, 3), np.int64)), "joints"),
    "joints-rank-2": (_set("joints", np.zeros((3, 9), np.float32)), "joints"),
    "joints-rank-5": (_set("joints", np.zeros((3, 1, 1, 3, 3), np.float32)), "joints"),
    "joints-nan": (_with_nan, "joints"),
    "joints-inf": (_with_inf, "joints"),
    "lengths-float": (_set("lengths", np.array([2.0, 1.0])), "lengths"),
    "lengths-rank-2": (_set("lengths", np.array([[2, 1]])), "lengths"),
    "lengths-sum": (_set("lengths", np.array([2, 2])), "lengths"),
    "lengths-zero": (_set("lengths", np.array([3, 0])), "lengths"),
    "labels-float": (_set("labels", np.array([0.0, 1.0])), "labels"),
    "labels-length": (_set("labels", np.array([0, 1, 1])), "labels"),
    "labels-too-high": (_set("labels", np.array([0, 2])), "labels"),
    "labels-negative": (_set("labels", np.array([-1, 0])), "labels"),
    "class-names-numbers": (_set("class_names", np.array([1, 2])), "class_names"),
    "class-names-duplicate": (_set("class_names", np.array(["a", "a"])), "class_names"),
    "parents-float": (_set("parents", np.array([-1.0, 0.0, 1.0])), "parents"),
    "parents-length": (_set("parents", np.array([-1, 0])), "parents"),
    "parents-out-of-range": (_set("parents", np.array([-1, 0, 3])), "parents"),
    "parents-below-minus-one": (_set("parents", np.array([-1, -2, 1])), "parents"),
    "parents-cycle": (_set("parents", np.array([-1, 2, 1])), "parents"),
    "parents-two-roots": (_set("parents", np.array([-1, -1, 1])), "parents"),
    "parents-no-root": (_set("parents", np.array([1, 2, 0])), "parents"),
    "joint-names-length": (_set("joint_names", np.array(["root", "mid"])), "joint_names"),
    "subjects-float": (_set("subjects", np.array([1.0, 2.0])), "subjects"),
    "views-length": (_set("views", np.array([1])), "views"),
    "clip-ids-duplicate": (_set("clip_ids", np.array(["x", "x"])), "clip_ids"),
    "clip-ids-numbers": (_set("clip_ids", np.array([1, 2])), "clip_ids"),
    "split-unknown": (_set("split", np.array(["train", "holdout"])), "split"),
    "fps-negative": (_set("fps", np.array(-1.0)), "fps"),
    "fps-vector": (_set("fps", np.array([30.0, 30.0])), "fps"),
    "source-number": (_set("source", np.array(3)), "source"),
    "styles-without-names": ((lambda arrays: arrays.pop("style_names")), "styles"),
    "styles-too-high": (_set("styles", np.array([0, 2])), "styles"),
    "styles-length": (_set("styles", np.array([0])), "styles"),
    "style-names-duplicate": (_set("style_names", np.array(["calm", "calm"])), "style_names"),
    "pickled-object": (_set("views", np.array([{"view": 1}, None], dtype=object)), "views"),
}


def test_the_valid_arrays_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "good.npz"
    np.savez(path, **_valid_arrays())
    dataset = read_archive(path)
    assert dataset.lengths.tolist() == [2, 1] and dataset.clip_ids == ["x", "y"]


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_broken_rule_is_refused_naming_file_and_key(tmp_path: Path, case: str) -> None:
    edit, key = REFUSALS[case]
    arrays = _valid_arrays()
    edit(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError) as error:
        read_archive(path)
    message = str(error.value)
    assert message.startswith(str(path)) and f"'{key}'" in message


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "no such file"), (b"not a zip", "not an .npz archive"), (b"PK\x03\x04broken", "not a readable")],
    ids=["missing", "text", "broken-zip"],
)
def test_unreadable_files_are_refused(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "data.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataFormatError, match=words) as error:
        read_archive(path)
    assert str(path) in str(error.value)


def test_a_single_npy_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    with path.open("wb") as file:
        np.save(file, np.zeros(3))
    with pytest.raises(DataFormatError, match="single .npy array"):
        read_archive(path)


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_archive(_dataset(), tmp_path / "data.npz")
    write_archive(_dataset(seed=1), tmp_path / "data.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]
    np.testing.assert_array_equal(read_archive(tmp_path / "data.npz").clips[0], _dataset(seed=1).clips[0])


def test_a_failed_write_keeps_the_existing_file_and_removes_the_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_archive(_dataset(), tmp_path / "data.npz")
    before = path.read_bytes()

    def failing_savez(file: object, **arrays: np.ndarray) -> None:
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        write_archive(_dataset(seed=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]


def test_write_refuses_a_name_without_npz(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"\.npz"):
        write_archive(_dataset(), tmp_path / "data.zip")

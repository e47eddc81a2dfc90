"""Readers of the real formats, on small made-up files built here, and on real NW-UCLA when present."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from format_files import (
    ntu_skeleton_text,
    real_kard_dir,
    real_nw_ucla_dir,
    write_kard_clip,
    write_humanact12_clip,
    write_ntu_clip,
    write_nw_ucla_clip,
)

from mdm.data.archive import write_archive
from mdm.data.classes import load_class_table
from mdm.data.readers import DEFAULT_MIN_FRAMES, read_dataset
from mdm.data.readers.humanact12 import read_humanact12
from mdm.data.readers.kard import read_kard
from mdm.data.readers.ntu_skeleton import NTU60_TRAIN_SUBJECTS, read_ntu_skeleton
from mdm.data.readers.nw_ucla import read_nw_ucla
from mdm.errors import ConfigError, DataFormatError

# ---------------------------------------------------------------- KARD


def test_kard_reads_metres_labels_subjects_and_cross_subject_split(tmp_path: Path) -> None:
    first = write_kard_clip(tmp_path, activity=1, subject=1, repetition=1, frames=4, seed=1)
    write_kard_clip(tmp_path, activity=9, subject=2, repetition=3, frames=3, seed=2)
    last = write_kard_clip(tmp_path, activity=18, subject=10, repetition=2, frames=5, seed=3)
    dataset = read_kard(tmp_path)
    assert dataset.labels.tolist() == [0, 8, 17] and len(dataset.class_names) == 18
    assert dataset.class_names[17] == "stand up" and dataset.skeleton.name == "openni_15"
    assert dataset.subjects.tolist() == [1, 2, 10] and dataset.split.tolist() == ["train", "test", "test"]
    assert np.allclose(dataset.clips[0], first, atol=1e-6) and np.allclose(dataset.clips[2], last, atol=1e-6)
    assert dataset.clip_ids[0] == "a01_s01_e01_realworld" and dataset.fps == 30.0
    assert read_kard(tmp_path, train_subjects=(2,)).split.tolist() == ["test", "train", "test"]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("a01_s01_e02_realworld.txt", "1 2 3\n" * 14, "whole frames of 15"),
        ("a01_s01_e02_realworld.txt", "1 2 3\n" * 14 + "1 2\n", "line 15"),
        ("a01_s01_e02_realworld.txt", "1 2 x\n" * 15, "line 1:"),
        ("a01_s01_e02_realworld.txt", "nan 2 3\n" * 15, "NaN"),
        ("a01_s01_e02_realworld.txt", "", "no frames"),
        ("a1_s01_e02_realworld.txt", "1 2 3\n" * 15, "file name"),
        ("a19_s01_e02_realworld.txt", "1 2 3\n" * 15, "a19"),
    ],
)
def test_kard_refuses_a_bad_file_naming_it(tmp_path: Path, name: str, content: str, words: str) -> None:
    write_kard_clip(tmp_path, activity=1, subject=1, repetition=1, frames=2)
    (tmp_path / name).write_text(content)
    with pytest.raises(DataFormatError) as error:
        read_kard(tmp_path)
    assert name in str(error.value) and words in str(error.value)


def test_real_kard_has_540_clips_and_bones_of_constant_length() -> None:
    folder = real_kard_dir()
    if not folder.is_dir():
        pytest.skip(f"real KARD data not found at {folder} (set KARD_DIR)")
    dataset = read_dataset("kard", folder)
    assert len(dataset) == 540 and np.bincount(dataset.labels).tolist() == [30] * 18
    assert np.sum(dataset.split == "train") == 270
    parents = np.array(dataset.skeleton.parents)
    children = np.flatnonzero(parents >= 0)
    spread = []
    for clip in dataset.clips:  # the skeleton's links are the ones along which lengths stay constant
        lengths = np.linalg.norm(clip[:, children] - clip[:, parents[children]], axis=-1)
        spread.append(np.median(lengths.std(0) / lengths.mean(0)))
    assert np.median(spread) < 0.05


# ---------------------------------------------------------------- NW-UCLA


def test_nw_ucla_reads_labels_subjects_views_and_cross_view_split(tmp_path: Path) -> None:
    first = write_nw_ucla_clip(tmp_path, action=1, subject=1, episode=0, view=1, frames=5, seed=1)
    write_nw_ucla_clip(tmp_path, action=8, subject=3, episode=2, view=2, frames=4, seed=2)
    last = write_nw_ucla_clip(tmp_path, action=12, subject=10, episode=4, view=3, frames=3, seed=3)
    (tmp_path / "README.txt").write_text("not a clip")
    dataset = read_nw_ucla(tmp_path)
    assert dataset.clip_ids == ["a01_s01_e00_v01", "a08_s03_e02_v02", "a12_s10_e04_v03"]
    np.testing.assert_array_equal(dataset.labels, [0, 6, 9])
    assert [dataset.class_names[k] for k in dataset.labels] == ["pick up with one hand", "donning", "carry"]
    assert dataset.num_classes == 10
    np.testing.assert_array_equal(dataset.subjects, [1, 3, 10])
    np.testing.assert_array_equal(dataset.views, [1, 2, 3])
    assert dataset.split.tolist() == ["train", "train", "test"]
    assert dataset.skeleton.name == "kinect_v1" and dataset.fps == 30.0
    np.testing.assert_array_equal(dataset.clips[0], first)
    np.testing.assert_array_equal(dataset.clips[2], last)
    assert dataset.clips[0].dtype == np.float32 and dataset.lengths.tolist() == [5, 4, 3]


def test_nw_ucla_train_views_option_moves_views_between_train_and_test(tmp_path: Path) -> None:
    for view in (1, 2, 3):
        write_nw_ucla_clip(tmp_path, action=2, subject=1, episode=0, view=view, frames=3)
    assert read_nw_ucla(tmp_path, train_views=(2, 3)).split.tolist() == ["test", "train", "train"]


def _nw_ucla_record(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {"file_name": "a01_s01_e00_v01", "skeletons": np.zeros((3, 20, 3)).tolist(), "label": 1}
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("a01_s01_e00_v01.json", "{not json", "not valid JSON"),
        ("a01_s01_e00_v01.json", "[1, 2]", "JSON object"),
        ("a01_s01_e00_v01.json", json.dumps({"file_name": "a01_s01_e00_v01", "label": 1}), "'skeletons'"),
        ("a01_s01_e00_v01.json", json.dumps({"skeletons": [], "label": 1}), "'file_name'"),
        ("a01_s01_e00_v01.json", json.dumps({"file_name": "a01_s01_e00_v01", "skeletons": []}), "'label'"),
        ("a01_s01_e00_v01.json", json.dumps(_nw_ucla_record(skeletons=np.zeros((3, 19, 3)).tolist())), "[T, 20, 3]"),
        ("a01_s01_e00_v01.json", json.dumps(_nw_ucla_record(skeletons=[[[0, 0, 0]] * 20, [[0, 0]] * 20])),
         "'skeletons'"),
        ("a01_s01_e00_v01.json", json.dumps(_nw_ucla_record(skeletons=[])), "'skeletons'"),
        ("a01_s01_e00_v01.json", json.dumps(_nw_ucla_record(skeletons=[[[float("nan"), 0, 0]] * 20])), "NaN"),
        ("a01_s01_e00_v01.json", json.dumps(_nw_ucla_record(skeletons=[[[float("inf"), 0, 0]] * 20])), "NaN"),
        ("a01_s01_e00_v01.json", json.dumps(_nw_ucla_record(label=2)), "'label'"),
        ("a01_s01_e00_v01.json", json.dumps(_nw_ucla_record(label="1")), "'label'"),
        ("a01_s01_e00_v01.json", json.dumps(_nw_ucla_record(file_name="a01_s02_e00_v01")), "'file_name'"),
        ("a1_s01_e00_v01.json", json.dumps(_nw_ucla_record(file_name="a1_s01_e00_v01")), "file name"),
        ("a07_s01_e00_v01.json", json.dumps(_nw_ucla_record(file_name="a07_s01_e00_v01")), "a07"),
    ],
)
def test_nw_ucla_refuses_a_bad_file_naming_it(tmp_path: Path, name: str, content: str, words: str) -> None:
    write_nw_ucla_clip(tmp_path, action=1, subject=2, episode=0, view=1, frames=3)
    (tmp_path / name).write_text(content)
    with pytest.raises(DataFormatError) as error:
        read_nw_ucla(tmp_path)
    assert name in str(error.value) and words in str(error.value)


def test_nw_ucla_refuses_a_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such folder"):
        read_nw_ucla(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no .json files"):
        read_nw_ucla(tmp_path / "empty")
    with pytest.raises(DataFormatError, match="got a file"):
        read_nw_ucla(Path(__file__))


@pytest.fixture(scope="module")
def real_nw_ucla() -> object:
    folder = real_nw_ucla_dir()
    if not folder.is_dir():
        pytest.skip(f"real NW-UCLA data not found at {folder} (set NW_UCLA_DIR)")
    return read_dataset("nw-ucla", folder, min_frames=1)


def test_real_nw_ucla_has_1484_clips_10_classes_3_views(real_nw_ucla: object) -> None:
    dataset = real_nw_ucla
    assert len(dataset) == 1484
    assert dataset.num_classes == 10 and min(dataset.class_counts().values()) >= 140
    assert sorted(set(dataset.views.tolist())) == [1, 2, 3]
    assert sorted(set(dataset.subjects.tolist())) == list(range(1, 11))
    assert dataset.split.tolist().count("test") == int(np.sum(dataset.views == 3)) == 464
    assert all(clip.shape[1:] == (20, 3) for clip in dataset.clips)


def test_real_nw_ucla_default_min_frames_drops_only_single_frame_clips(real_nw_ucla: object) -> None:
    dataset = real_nw_ucla
    short = [clip_id for clip_id, length in zip(dataset.clip_ids, dataset.lengths) if length < DEFAULT_MIN_FRAMES]
    assert short == ["a02_s09_e04_v02", "a02_s09_e04_v03"]


# ---------------------------------------------------------------- HumanAct12


def test_humanact12_reads_coarse_classes_and_subjects(tmp_path: Path) -> None:
    first = write_humanact12_clip(tmp_path, "P01G01R01F0001T0064A0101", frames=6, seed=1)
    write_humanact12_clip(tmp_path, "P03G02R01F0100T0140A0502", frames=4, seed=2)
    write_humanact12_clip(tmp_path, "P12G01R02F0010T0020A1203", frames=5, seed=3)
    dataset = read_humanact12(tmp_path)
    np.testing.assert_array_equal(dataset.labels, [0, 4, 11])
    assert [dataset.class_names[k] for k in dataset.labels] == ["warm_up", "drink", "throw"]
    assert dataset.class_names[8] == "turn steering wheel" and dataset.num_classes == 12
    np.testing.assert_array_equal(dataset.subjects, [1, 3, 12])
    np.testing.assert_array_equal(dataset.views, [-1, -1, -1])
    assert dataset.split is None and dataset.fps == 20.0 and dataset.skeleton.name == "smpl_24"
    assert dataset.clip_ids[0] == "P01G01R01F0001T0064A0101"
    np.testing.assert_array_equal(dataset.clips[0], first)


@pytest.mark.parametrize(
    ("name", "array", "words"),
    [
        ("P01G01R01F0001T0064A0101", np.zeros((4, 23, 3), np.float32), "[T, 24, 3]"),
        ("P01G01R01F0001T0064A0101", np.zeros((4, 24), np.float32), "[T, 24, 3]"),
        ("P01G01R01F0001T0064A0101", np.zeros((4, 24, 3), np.int64), "floats"),
        ("P01G01R01F0001T0064A0101", np.full((4, 24, 3), np.nan, np.float32), "NaN"),
        ("P01G01R01F0001T0064A0101", np.array([{"joints": 1}], dtype=object), "plain .npy"),
        ("P01G01R01F0001T0064A1301", np.zeros((4, 24, 3), np.float32), "13"),
        ("P01G01R01F0001A0101", np.zeros((4, 24, 3), np.float32), "file name"),
    ],
)
def test_humanact12_refuses_a_bad_file_naming_it(tmp_path: Path, name: str, array: np.ndarray, words: str) -> None:
    write_humanact12_clip(tmp_path, "P02G01R01F0001T0064A0201", frames=3)
    np.save(tmp_path / f"{name}.npy", array, allow_pickle=True)
    with pytest.raises(DataFormatError) as error:
        read_humanact12(tmp_path)
    assert name in str(error.value) and words in str(error.value)


def test_humanact12_refuses_a_file_that_is_not_npy(tmp_path: Path) -> None:
    (tmp_path / "P01G01R01F0001T0064A0101.npy").write_text("hello")
    with pytest.raises(DataFormatError, match="P01G01R01F0001T0064A0101.npy"):
        read_humanact12(tmp_path)


# ---------------------------------------------------------------- NTU RGB+D .skeleton


def _body(seed: int, frames: int, motion: float) -> np.ndarray:
    """float ``[T, 25, 3]``: a random pose moving along x by ``motion`` per frame."""
    pose = np.random.default_rng(seed).normal(size=(25, 3))
    return pose + motion * np.arange(frames)[:, None, None] * np.array([1.0, 0.0, 0.0])


def test_ntu_single_body_fills_person_0_and_leaves_person_1_zero(tmp_path: Path) -> None:
    body = _body(0, 4, 0.1)
    write_ntu_clip(tmp_path, "S001C002P003R001A007", [[("72057594037931101", body[t])] for t in range(4)])
    dataset = read_ntu_skeleton(tmp_path)
    clip = dataset.clips[0]
    assert clip.shape == (4, 2, 25, 3) and clip.dtype == np.float32
    np.testing.assert_allclose(clip[:, 0], body, atol=1e-5)
    assert not clip[:, 1].any()
    assert dataset.labels.tolist() == [6] and dataset.class_names[6] == "throw" and dataset.num_classes == 60
    assert dataset.subjects.tolist() == [3] and dataset.views.tolist() == [2]
    assert dataset.skeleton.name == "kinect_v2" and dataset.fps == 30.0 and dataset.is_multi_person


def test_ntu_keeps_the_two_most_active_bodies_ordered_by_activity(tmp_path: Path) -> None:
    still, slow, fast = _body(1, 5, 0.0), _body(2, 5, 0.05), _body(3, 5, 0.2)
    frames = [[("11", still[t]), ("22", slow[t]), ("33", fast[t])] for t in range(5)]
    write_ntu_clip(tmp_path, "S001C001P001R001A050", frames)
    clip = read_ntu_skeleton(tmp_path).clips[0]
    assert clip.shape == (5, 2, 25, 3)
    np.testing.assert_allclose(clip[:, 0], fast, atol=1e-5)
    np.testing.assert_allclose(clip[:, 1], slow, atol=1e-5)


def test_ntu_follows_bodies_by_id_and_drops_frames_without_them(tmp_path: Path) -> None:
    first, second = _body(4, 4, 0.3), _body(5, 4, 0.1)
    frames = [[], [("7", first[0])], [("8", second[1]), ("7", first[1])], [("8", second[2])], []]
    write_ntu_clip(tmp_path, "S002C001P001R002A058", frames)
    clip = read_ntu_skeleton(tmp_path).clips[0]
    assert clip.shape == (3, 2, 25, 3)
    np.testing.assert_allclose(clip[:2, 0], first[:2], atol=1e-5)
    assert not clip[2, 0].any() and not clip[0, 1].any()
    np.testing.assert_allclose(clip[1:, 1], second[1:3], atol=1e-5)


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [("xsub", ["train", "test", "test"]), ("xview", ["test", "train", "train"]),
     ("xsub120", ["train", "test", "train"]), ("xset", ["test", "train", "train"]), (None, None)],
)
def test_ntu_protocols_write_the_standard_split(tmp_path: Path, protocol: str | None,
                                                expected: list[str] | None) -> None:
    body = _body(0, 2, 0.1)
    frames = [[("1", body[t])] for t in range(2)]
    for name in ("S001C001P001R001A001", "S002C002P003R001A001", "S004C003P045R001A001"):
        write_ntu_clip(tmp_path, name, frames)
    dataset = read_ntu_skeleton(tmp_path, protocol=protocol)
    assert (dataset.split.tolist() if dataset.split is not None else None) == expected
    assert 1 in NTU60_TRAIN_SUBJECTS and 3 not in NTU60_TRAIN_SUBJECTS


def test_ntu_uses_120_classes_when_an_ntu120_action_is_present(tmp_path: Path) -> None:
    body = _body(0, 2, 0.1)
    frames = [[("1", body[t])] for t in range(2)]
    write_ntu_clip(tmp_path, "S001C001P001R001A001", frames)
    write_ntu_clip(tmp_path, "S018C001P001R001A120", frames)
    dataset = read_ntu_skeleton(tmp_path)
    assert dataset.num_classes == 120 and dataset.labels.tolist() == [0, 119]
    assert dataset.class_names == list(load_class_table("ntu120").values())


def test_ntu_skips_a_file_without_bodies_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    body = _body(0, 2, 0.1)
    write_ntu_clip(tmp_path, "S001C001P001R001A001", [[("1", body[t])] for t in range(2)])
    write_ntu_clip(tmp_path, "S001C001P001R001A002", [[], []])
    with caplog.at_level(logging.WARNING, logger="mdm.data"):
        dataset = read_ntu_skeleton(tmp_path)
    assert dataset.clip_ids == ["S001C001P001R001A001"]
    assert len(caplog.records) == 1 and "S001C001P001R001A002" in caplog.records[0].getMessage()


def _good_ntu_lines() -> list[str]:
    body = _body(0, 2, 0.1)
    return ntu_skeleton_text([[("1", body[0])], [("1", body[1])]]).splitlines()


def _ntu_case(edit: Callable[[list[str]], list[str]]) -> str:
    return "\n".join(edit(_good_ntu_lines())) + "\n"


def _replace(index: int, text: str) -> Callable[[list[str]], list[str]]:
    return lambda lines: lines[:index] + [text] + lines[index + 1:]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (_ntu_case(lambda lines: lines[:40]), "line 41: the file ends early"),
        (_ntu_case(lambda lines: lines[:1]), "line 2: the file ends early"),
        ("", "line 1: the file ends early"),
        (_ntu_case(_replace(0, "two")), "line 1: expected the number of frames"),
        (_ntu_case(_replace(1, "-1")), "line 2: expected the number of bodies of frame 1"),
        (_ntu_case(_replace(2, "1 0 1 2")), "line 3: expected a body information line"),
        (_ntu_case(_replace(3, "24")), "line 4: expected 25 joints"),
        (_ntu_case(_replace(10, "0.1 0.2 abc 1 1 1 1 1 1 1 1 2")), "line 11: joint coordinates are not numbers"),
        (_ntu_case(_replace(10, "0.1 0.2 0.3 1 1 1 1 1 1 1 2")), "line 11: expected a joint line (12 values), got 11"),
        (_ntu_case(_replace(12, "nan 0.2 0.3 1 1 1 1 1 1 1 1 2")), "line 13: joint coordinates contain NaN"),
        (_ntu_case(lambda lines: [*lines, "", "garbage"]), "line 59: unexpected content"),
        (_ntu_case(lambda lines: lines[:1] + ["2"] + lines[2:29] + lines[2:]), "appears twice in frame 1"),
    ],
    ids=["truncated-joints", "truncated-frame", "empty", "frame-count", "body-count", "body-info", "joint-count",
         "joint-text", "joint-values", "joint-nan", "trailing", "duplicate-body"],
)
def test_ntu_refuses_truncated_or_garbled_files_naming_file_and_line(tmp_path: Path, content: str, words: str) -> None:
    (tmp_path / "S001C001P001R001A001.skeleton").write_text(content)
    with pytest.raises(DataFormatError) as error:
        read_ntu_skeleton(tmp_path)
    assert "S001C001P001R001A001.skeleton" in str(error.value) and words in str(error.value)


def test_ntu_refuses_bad_names_and_protocols(tmp_path: Path) -> None:
    (tmp_path / "S001C001P001R001A121.skeleton").write_text("0\n")
    with pytest.raises(DataFormatError, match="A121"):
        read_ntu_skeleton(tmp_path)
    (tmp_path / "S001C001P001R001A121.skeleton").rename(tmp_path / "S1C1P1R1A1.skeleton")
    with pytest.raises(DataFormatError, match="S1C1P1R1A1.skeleton.*file name"):
        read_ntu_skeleton(tmp_path)
    with pytest.raises(ConfigError, match="protocol"):
        read_ntu_skeleton(tmp_path, protocol="cross-subject")


# ---------------------------------------------------------------- read_dataset


def _short_and_long_nw_ucla(folder: Path) -> None:
    write_nw_ucla_clip(folder, action=1, subject=1, episode=0, view=1, frames=1)
    write_nw_ucla_clip(folder, action=2, subject=1, episode=0, view=1, frames=3)
    write_nw_ucla_clip(folder, action=3, subject=1, episode=0, view=3, frames=6)


def test_read_dataset_drops_short_clips_with_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _short_and_long_nw_ucla(tmp_path)
    with caplog.at_level(logging.INFO, logger="mdm.data"):
        dataset = read_dataset("nw-ucla", tmp_path, min_frames=4)
    assert dataset.clip_ids == ["a03_s01_e00_v03"] and dataset.split.tolist() == ["test"]
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "dropped 2 clip(s)" in message and "a01_s01_e00_v01" in message and "a02_s01_e00_v01" in message


def test_read_dataset_default_drops_single_frames_and_logs_nothing_when_nothing_drops(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _short_and_long_nw_ucla(tmp_path)
    with caplog.at_level(logging.INFO, logger="mdm.data"):
        assert read_dataset("nw-ucla", tmp_path).lengths.tolist() == [3, 6]
        caplog.clear()
        assert len(read_dataset("nw-ucla", tmp_path, min_frames=1)) == 3
    assert caplog.records == []


def test_read_dataset_applies_min_frames_to_archives_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _short_and_long_nw_ucla(tmp_path / "clips")
    write_archive(read_dataset("nw-ucla", tmp_path / "clips", min_frames=1), tmp_path / "all.npz")
    with caplog.at_level(logging.WARNING, logger="mdm.data"):
        assert read_dataset("archive", tmp_path / "all.npz", min_frames=5).clip_ids == ["a03_s01_e00_v03"]
    assert len(caplog.records) == 1


def test_read_dataset_passes_reader_options_and_refuses_unknown_ones(tmp_path: Path) -> None:
    _short_and_long_nw_ucla(tmp_path)
    assert read_dataset("nw-ucla", tmp_path, train_views=(3,)).split.tolist() == ["test", "train"]
    with pytest.raises(ConfigError, match="protocol"):
        read_dataset("nw-ucla", tmp_path, protocol="xsub")
    with pytest.raises(ConfigError, match="unknown dataset format"):
        read_dataset("kinetics", tmp_path)
    with pytest.raises(ConfigError, match="min_frames"):
        read_dataset("nw-ucla", tmp_path, min_frames=0)

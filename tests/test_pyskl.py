"""The pyskl annotation format: a written pickle reads back; foreign layouts are refused with one message."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toy_data import toy_archive, toy_dataset

from mdm.data.readers import read_dataset
from mdm.data.readers.pyskl import write_pyskl
from mdm.data.sources import DataConfig, load_training_data
from mdm.errors import DataFormatError

REPO = Path(__file__).resolve().parents[1]


def test_a_written_pickle_reads_back_with_its_split_labels_and_joints(tmp_path: Path) -> None:
    dataset = toy_dataset(clips_per_class=4)
    path = write_pyskl(dataset, tmp_path / "toy.pkl", protocol="xsub")
    with path.open("rb") as file:
        raw = pickle.load(file)
    first = raw["annotations"][0]
    assert first["keypoint"].shape == (1, dataset.clips[0].shape[0], dataset.skeleton.num_joints, 3)
    assert first["total_frames"] == dataset.clips[0].shape[0] and set(raw["split"]) == {"xsub_train", "xsub_val"}
    back = read_dataset("pyskl", path)
    assert back.skeleton.name == "kinect_v1" and back.clip_ids == dataset.clip_ids
    assert np.array_equal(back.labels, dataset.labels) and np.array_equal(back.split, dataset.split)
    assert all(np.array_equal(a, b) for a, b in zip(back.clips, dataset.clips))
    assert back.class_names == [f"class_{k}" for k in range(dataset.num_classes)]
    named = read_dataset("pyskl", path, class_table="ntu120")
    assert named.class_names[0] == "drink water"
    training = load_training_data(DataConfig(name="pyskl", root=str(path)))
    assert set(training.split) == {"train", "val", "test"}


def test_two_person_clips_keep_both_people(tmp_path: Path) -> None:
    keypoint = np.random.default_rng(0).normal(size=(2, 6, 25, 3)).astype(np.float32)
    one = np.random.default_rng(1).normal(size=(1, 4, 25, 3)).astype(np.float32)
    data = {"split": {"xsub_train": ["a"], "xsub_val": ["b"]},
            "annotations": [{"frame_dir": "a", "label": 3, "keypoint": keypoint, "total_frames": 6},
                            {"frame_dir": "b", "label": 0, "keypoint": one, "total_frames": 4},
                            {"frame_dir": "c", "label": 1, "keypoint": one, "total_frames": 4}]}
    path = tmp_path / "ntu.pkl"
    path.write_bytes(pickle.dumps(data))
    dataset = read_dataset("pyskl", path)
    assert dataset.skeleton.name == "kinect_v2" and dataset.clip_ids == ["a", "b"]  # c is in no split
    assert dataset.clips[0].shape == (6, 2, 25, 3) and np.array_equal(dataset.clips[0][:, 1], keypoint[1])
    assert np.all(dataset.clips[1][:, 1] == 0)  # the lone person's clip is zero-padded


@pytest.mark.parametrize(("content", "words"), [
    ([1, 2, 3], "not pyskl's layout"),
    ({"split": {"xsub_train": ["a"]}, "annotations": []}, "no splits ['xsub_train', 'xsub_val'] for protocol 'xsub'"),
    ({"split": {"xsub_train": ["a"], "xsub_val": []}, "annotations": [{"frame_dir": "a", "label": 0}]},
     "annotation 0: needs 'frame_dir', 'label' and 'keypoint'"),
    ({"split": {"xsub_train": ["a"], "xsub_val": []},
      "annotations": [{"frame_dir": "a", "label": 0, "keypoint": np.zeros((1, 4, 17, 2))}]},
     "only 3D skeletons are read"),
])
def test_foreign_pickles_are_refused_with_one_message(tmp_path: Path, content: object, words: str) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(DataFormatError, match="bad.pkl") as error:
        read_dataset("pyskl", path)
    assert words in str(error.value)


def test_the_converter_writes_pyskl_and_reads_it_back(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=3)
    out = tmp_path / "toy.pkl"
    convert = [sys.executable, str(REPO / "run/convert_dataset.py")]
    subprocess.run(convert + ["--format", "archive", "--input", str(archive), "--output", str(out)], check=True,
                   capture_output=True)
    again = tmp_path / "again.npz"
    subprocess.run(convert + ["--format", "pyskl", "--input", str(out), "--output", str(again), "--option",
                              "protocol=custom"], check=True, capture_output=True)
    assert read_dataset("archive", again).clip_ids == read_dataset("archive", archive).clip_ids

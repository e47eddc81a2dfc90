"""Readers of the ACTOR / I-MDM SMPL pickles (HumanAct12Poses, NTU-13), on small made-up files."""

import pickle

import numpy as np
import pytest
import torch

from mdm.data.readers import read_dataset
from mdm.data.readers.smpl_pickles import (
    humanact12_class_names,
    ntu13_class_names,
    read_humanact12poses,
    read_ntu13,
)
from mdm.errors import ConfigError, DataFormatError, UserError
from mdm.kinematics import default_smpl_rest_offsets, forward_kinematics
from mdm.rotations import axis_angle_to_matrix, rotation_6d_to_matrix
from mdm.skeleton import load_skeleton

SMPL = load_skeleton("smpl_24")


def write_pickle(path, data) -> None:
    path.write_bytes(pickle.dumps(data))


def actor_data(lengths=(5, 8, 3), seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "poses": [rng.normal(scale=0.5, size=(t, 72)).astype(np.float32) for t in lengths],
        "joints3D": [rng.normal(size=(t, 24, 3)).astype(np.float32) for t in lengths],
        "y": [0, 5, 11][: len(lengths)],
    }


def imdm_entry(matrices: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """I-MDM's ``[25, 6, T]``: 6D as the first two rows of each matrix, translation slot last."""
    frames = len(matrices)
    d6_rows = matrices[:, :, :2, :].reshape(frames, 24, 6)
    slot = np.concatenate([translation, np.zeros((frames, 3))], -1)[:, None]
    return np.concatenate([d6_rows, slot], 1).transpose(1, 2, 0).astype(np.float32)


def imdm_data(seed=0):
    rng = np.random.default_rng(seed)
    matrices = [axis_angle_to_matrix(torch.as_tensor(rng.normal(size=(t, 24, 3)))).numpy() for t in (6, 4, 9)]
    translations = [rng.normal(size=(len(m), 3)) for m in matrices]
    entries = [imdm_entry(m, t) for m, t in zip(matrices, translations)]
    entries[1] = entries[1][None]  # [1, 25, 6, T]
    entries[2] = np.stack([entries[2], np.zeros_like(entries[2])])  # two persons, the second absent
    data = {"rot6d": entries, "y": [12, 0, 3], "seq": ["S001C002P003R001A102", "S017C003P020R002A006", "clip_x"]}
    return data, matrices, translations


def test_read_actor_humanact12poses(tmp_path):
    data = actor_data()
    path = tmp_path / "humanact12poses.pkl"
    write_pickle(path, data)
    dataset = read_humanact12poses(path)
    assert len(dataset) == 3 and dataset.class_names == humanact12_class_names()
    assert dataset.class_names[8] == "turn steering wheel" and dataset.num_classes == 12
    assert dataset.labels.tolist() == [0, 5, 11] and dataset.skeleton.name == "smpl_24"
    assert dataset.fps == 20.0 and dataset.split is None
    for index, length in enumerate((5, 8, 3)):
        np.testing.assert_array_equal(dataset.clips[index], data["joints3D"][index])
        assert dataset.clips[index].dtype == np.float32
        np.testing.assert_array_equal(dataset.translations[index], data["joints3D"][index][:, 0])
        assert dataset.rotations[index].shape == (length, 24, 6)
        expected = axis_angle_to_matrix(torch.as_tensor(data["poses"][index]).reshape(length, 24, 3))
        torch.testing.assert_close(rotation_6d_to_matrix(torch.as_tensor(dataset.rotations[index])), expected,
                                   atol=1e-5, rtol=0)


def test_actor_poses_may_be_per_joint_and_split_is_written(tmp_path):
    data = actor_data(lengths=(4,))
    data["poses"] = [data["poses"][0].reshape(4, 24, 3)]
    path = tmp_path / "poses.pkl"
    write_pickle(path, data)
    dataset = read_humanact12poses(path, split="train")
    assert dataset.split.tolist() == ["train"]
    assert read_dataset("humanact12poses", path).labels.tolist() == [0]


def test_read_ntu13_imdm_pickle(tmp_path):
    data, matrices, translations = imdm_data()
    path = tmp_path / "ntu13_train.pkl"
    write_pickle(path, data)
    dataset = read_ntu13(path, split="test")
    assert dataset.class_names == ntu13_class_names() and dataset.num_classes == 13
    assert dataset.class_names[0] == "pickup" and dataset.class_names[12] == "side kick"
    assert dataset.labels.tolist() == [12, 0, 3]
    assert dataset.subjects.tolist() == [3, 20, -1] and dataset.views.tolist() == [2, 3, -1]
    assert dataset.clip_ids == data["seq"] and dataset.split.tolist() == ["test"] * 3
    offsets = default_smpl_rest_offsets()
    for index in range(3):
        # Rows-convention 6D in the file, columns convention in the dataset: same rotations.
        decoded = rotation_6d_to_matrix(torch.as_tensor(dataset.rotations[index]))
        torch.testing.assert_close(decoded, torch.as_tensor(matrices[index], dtype=torch.float32), atol=1e-5, rtol=0)
        np.testing.assert_allclose(dataset.translations[index], translations[index], atol=1e-6)
        expected = forward_kinematics(torch.as_tensor(matrices[index]), offsets.double(),
                                      torch.as_tensor(translations[index]), SMPL.parents)
        np.testing.assert_allclose(dataset.clips[index], expected.numpy(), atol=1e-5)
        assert dataset.clips[index].dtype == np.float32 and dataset.clips[index].shape == (len(matrices[index]), 24, 3)


def test_imdm_humanact12_split_pickle_and_registry(tmp_path):
    data, _, _ = imdm_data()
    data["y"] = [11, 0, 1]
    path = tmp_path / "humanact12poses_train.pkl"
    write_pickle(path, data)
    dataset = read_humanact12poses(path)
    assert dataset.class_names == humanact12_class_names() and dataset.labels.tolist() == [11, 0, 1]
    assert read_dataset("ntu13", path).num_classes == 13


def test_duplicate_sequence_names_get_unique_ids(tmp_path):
    data, _, _ = imdm_data()
    data["seq"] = ["same", "same", "other"]
    path = tmp_path / "dup.pkl"
    write_pickle(path, data)
    clip_ids = read_ntu13(path).clip_ids
    assert len(set(clip_ids)) == 3 and all("same" in c or "other" in c for c in clip_ids)


def test_smpl_dir_without_model_files_is_a_user_error(tmp_path):
    data, _, _ = imdm_data()
    path = tmp_path / "ntu13.pkl"
    write_pickle(path, data)
    with pytest.raises(UserError, match="SMPL_MALE.pkl not found"):
        read_ntu13(path, smpl_dir=tmp_path / "body_models", gender="male")


def _actor_with(**changes) -> dict:
    data = actor_data()
    data.update(changes)
    return data


def _imdm_with(**changes) -> dict:
    data, _, _ = imdm_data()
    data.update(changes)
    return data


def _bad_joint(data: dict) -> dict:
    data["joints3D"][1] = data["joints3D"][1].copy()
    data["joints3D"][1][2, 3, 0] = np.nan
    return data


def _bad_rot(data: dict) -> dict:
    data["rot6d"][0] = data["rot6d"][0].copy()
    data["rot6d"][0][4, :3, 2] = 0.0
    return data


def _nan_rot(data: dict) -> dict:
    data["rot6d"][0] = data["rot6d"][0].copy()
    data["rot6d"][0][0, 0, 0] = np.inf
    return data


REFUSALS = [
    ("humanact12poses", [1, 2, 3], "must hold a dict"),
    ("humanact12poses", {"poses": []}, "missing key"),
    ("humanact12poses", _actor_with(y=[0, 1]), "key 'y' has 2 entries but 'poses' has 3"),
    ("humanact12poses", _actor_with(joints3D=actor_data()["joints3D"][:2]), "key 'joints3D' has 2 entries"),
    ("humanact12poses", _actor_with(poses="not a list"), "key 'poses' must be a list"),
    ("humanact12poses", _actor_with(joints3D=[np.zeros((5, 23, 3)), np.zeros((8, 24, 3)), np.zeros((3, 24, 3))]),
     r"'joints3D' entry 0 must be \[T, 24, 3\]"),
    ("humanact12poses", _actor_with(poses=[np.zeros((5, 71)), np.zeros((8, 72)), np.zeros((3, 72))]),
     "'poses' entry 0 must be"),
    ("humanact12poses", _actor_with(poses=[np.zeros((4, 72)), np.zeros((8, 72)), np.zeros((3, 72))]),
     "'poses' entry 0 must be"),
    ("humanact12poses", _bad_joint(actor_data()), "'joints3D' entry 1 contains NaN"),
    ("humanact12poses", _actor_with(y=[0, 12, 1]), r"labels must be integers in \[0, 12\)"),
    ("humanact12poses", _actor_with(y=[0, 1.5, 1]), "labels must be integers"),
    ("humanact12poses", _actor_with(y=[0, "1", 1]), "one integer label per clip"),
    ("ntu13", {"rot6d": [], "y": []}, "missing key.*seq"),
    ("ntu13", _imdm_with(seq=["a"]), "key 'seq' has 1 entries but 'rot6d' has 3"),
    ("ntu13", _imdm_with(y=[13, 0, 1]), r"\[0, 13\)"),
    ("ntu13", _imdm_with(rot6d=[np.zeros((24, 6, 5))] * 3, seq=["a", "b", "c"]),
     r"'rot6d' entry 0 must be \[25, 6, T\]"),
    ("ntu13", _bad_rot(imdm_data()[0]), "entry 0 frame 2 joint 4 is not a rotation"),
    ("ntu13", _nan_rot(imdm_data()[0]), "'rot6d' entry 0 contains NaN or infinite"),
]


@pytest.mark.parametrize("reader_name, data, message", REFUSALS)
def test_bad_pickles_are_refused_naming_file_and_key(tmp_path, reader_name, data, message):
    path = tmp_path / "bad.pkl"
    write_pickle(path, data)
    reader = read_humanact12poses if reader_name == "humanact12poses" else read_ntu13
    with pytest.raises(DataFormatError, match=message) as error:
        reader(path)
    assert str(error.value).startswith(str(path))


def test_unreadable_or_missing_file_and_bad_split(tmp_path):
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"this is not a pickle")
    with pytest.raises(DataFormatError, match="garbage.pkl: not a readable pickle"):
        read_ntu13(garbage)
    with pytest.raises(DataFormatError, match="no such file"):
        read_humanact12poses(tmp_path / "absent.pkl")
    path = tmp_path / "ok.pkl"
    write_pickle(path, actor_data())
    with pytest.raises(ConfigError, match="split"):
        read_humanact12poses(path, split="training")

"""BVH files and the Bandai Namco dataset: hierarchy, channel orders, forward kinematics, refusals."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from mdm.data.archive import read_archive, write_archive
from mdm.data.readers import read_dataset
from mdm.data.readers.bandai_namco import SKELETON, STYLES, bvh_joint_names, held_out_cells, read_bandai_namco
from mdm.data.readers.bvh import read_bvh
from mdm.data.transforms import ClipPipelineConfig, prepare_clip, trunk_pairs
from mdm.errors import ConfigError, DataFormatError
from mdm.skeleton import SKELETONS_DIR

CHAIN = """HIERARCHY
ROOT hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT knee
  {
    OFFSET 0 -2 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT foot
    {
      OFFSET 0 -3 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 0 1
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
1 5 0  0 0 0  0 0 0  0 0 0
0 0 0  90 0 0  0 0 0  0 90 0
"""


def rotation(axis: str, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return {"X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def test_a_chain_reads_and_its_forward_kinematics_are_right(tmp_path: Path) -> None:
    (tmp_path / "chain.bvh").write_text(CHAIN)
    motion = read_bvh(tmp_path / "chain.bvh")
    assert motion.joint_names == ["hips", "knee", "foot"] and motion.parents.tolist() == [-1, 0, 1]
    assert motion.fps == pytest.approx(25.0)
    positions = motion.positions()
    np.testing.assert_allclose(positions[0], [[1, 5, 0], [1, 3, 0], [1, 0, 0]], atol=1e-9)
    # frame 2: hips turned 90 degrees about z, so the leg points along +x; the knee's y-turn leaves it there
    np.testing.assert_allclose(positions[1], [[0, 0, 0], [2, 0, 0], [5, 0, 0]], atol=1e-9)


def test_rotation_channels_compose_in_their_listed_order(tmp_path: Path) -> None:
    text = CHAIN.replace("1 5 0  0 0 0  0 0 0  0 0 0\n", "0 0 0  30 40 50  0 0 0  0 0 0\n")
    (tmp_path / "order.bvh").write_text(text)
    expected = rotation("Z", 30) @ rotation("X", 40) @ rotation("Y", 50)
    np.testing.assert_allclose(read_bvh(tmp_path / "order.bvh").rotations[0, 0], expected, atol=1e-12)


def test_position_channels_replace_the_offset(tmp_path: Path) -> None:
    text = CHAIN.replace("CHANNELS 3 Zrotation Xrotation Yrotation\n    JOINT foot",
                         "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n    JOINT foot")
    text = text.replace("1 5 0  0 0 0  0 0 0  0 0 0\n", "1 5 0  0 0 0  0 -4 0  0 0 0  0 0 0\n")
    text = text.replace("0 0 0  90 0 0  0 0 0  0 90 0\n", "0 0 0  0 0 0  0 -4 0  0 0 0  0 0 0\n")
    (tmp_path / "translated.bvh").write_text(text)
    np.testing.assert_allclose(read_bvh(tmp_path / "translated.bvh").positions()[0, 1], [1, 1, 0], atol=1e-9)


@pytest.mark.parametrize(("old", "new", "words"), [
    ("1 5 0  0 0 0", "1 5 x  0 0 0", "line 24: a frame line must be numbers"),
    ("Frames: 2", "Frames: 3", "Frames says 3 but 2 frame lines follow"),
    ("    OFFSET 0 -2 0\n", "", "joint 'knee' has no OFFSET"),
    ("Zrotation Xrotation Yrotation\n    JOINT", "Zrotation Xrotation Wrotation\n    JOINT", "line 9: unknown or repeated"),
    ("CHANNELS 3 Zrotation Xrotation Yrotation\n    JOINT", "CHANNELS 2 Zrotation Xrotation Yrotation\n    JOINT",
     "line 9: CHANNELS says 2 but lists 3"),
    ("HIERARCHY\n", "HIERARCH\n", "line 1: a BVH file starts with HIERARCHY"),
    ("MOTION\n", "", "line 21: unexpected 'Frames:' in the hierarchy"),
    ("Frames: 2\nFrame Time: 0.04\n", "", "Frames: ...', got '1 5 0 0 0 0 0 0 0 0 0 0'"),
    ("  JOINT knee", "  JOINT hips", "line 6: joint 'hips' appears twice"),
    ("1 5 0  0 0 0  0 0 0  0 0 0", "1 5 0  0 0 0  0 0 0  0 0", "line 24: a frame line needs 12 numbers, got 11"),
    ("1 5 0  0 0 0", "1 5 0  nan 0 0", "line 24: a frame line holds NaN"),
])
def test_malformed_files_are_refused_naming_file_and_line(tmp_path: Path, old: str, new: str, words: str) -> None:
    assert old in CHAIN
    (tmp_path / "bad.bvh").write_text(CHAIN.replace(old, new, 1))
    with pytest.raises(DataFormatError, match="bad.bvh") as error:
        read_bvh(tmp_path / "bad.bvh")
    assert words in str(error.value)


def write_bandai_clip(folder: Path, content: int, style: int, number: int, frames: int = 4, seed: int = 0) -> None:
    """A Bandai-Namco-shaped clip: ``joint_Root`` then the 21 joints of ``bandai_namco_21`` with the
    skeleton file's tree, random small rotations, six channels a joint."""
    spec = yaml.safe_load((SKELETONS_DIR / f"{SKELETON}.yaml").read_text())
    bvh_of = {joint["name"]: joint["bvh"] for joint in spec["joints"]}
    children: dict[str | None, list[str]] = {}
    for joint in spec["joints"]:
        children.setdefault(joint["parent"], []).append(joint["name"])
    lines = ["HIERARCHY", "ROOT joint_Root", "{", "OFFSET 0 0 0",
             "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]

    def block(name: str) -> None:
        lines.extend([f"JOINT {bvh_of[name]}", "{", "OFFSET 0 10 0",
                      "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"])
        for child in children.get(name, []):
            block(child)
        if not children.get(name):
            lines.extend(["End Site", "{", "OFFSET 0 1 0", "}"])
        lines.append("}")

    for root in children[None]:
        block(root)
    lines.append("}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(frames):
        row = [0.0] * 6
        for _joint in range(len(spec["joints"])):
            row += [0.0, 10.0, 0.0] + list(rng.uniform(-20, 20, 3))
        values.append(" ".join(f"{v:.4f}" for v in row))
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.0333333", *values]
    stem = f"dataset-2_c{content}_{STYLES[style]}_{number:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.bvh").write_text("\n".join(lines) + "\n")
    (folder / f"{stem}.json").write_text(json.dumps({"content": content, "style": style}))


def test_bandai_namco_folder_reads_21_joints_in_metres_with_a_split_per_cell(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for content in (0, 3):
        for number in range(5):
            write_bandai_clip(data, content, style=1, number=number, seed=number)
    write_bandai_clip(data, 9, style=6, number=0)
    dataset = read_dataset("bandai-namco", tmp_path)
    assert len(dataset) == 11 and dataset.skeleton.num_joints == 21 and dataset.class_names[3] == "run"
    assert dataset.skeleton.joint_names[0] == "hips" and dataset.skeleton.parents[0] == -1
    bones = np.linalg.norm(dataset.clips[0][:, 1:] - dataset.clips[0][:, np.array(dataset.skeleton.parents[1:])],
                           axis=-1)
    np.testing.assert_allclose(bones, 0.1, atol=1e-6)  # 10 cm bones, in metres, every frame
    assert sorted(dataset.labels.tolist()) == [0] * 5 + [3] * 5 + [9]
    test = dataset.split == "test"
    assert [int(np.sum(test & (dataset.labels == c))) for c in (0, 3, 9)] == [1, 1, 0]  # 20% of 5; a lone clip trains
    again = read_bandai_namco(tmp_path)
    assert np.array_equal(again.split, dataset.split)


def test_bandai_namco_label_option_gives_styles_or_pairs_with_the_same_split(tmp_path: Path) -> None:
    for number, (content, style) in enumerate([(0, 1), (0, 1), (3, 6), (3, 6), (3, 0)]):
        write_bandai_clip(tmp_path, content, style, number=number, seed=number)
    by_content = read_bandai_namco(tmp_path)
    by_style = read_dataset("bandai-namco", tmp_path, label="style")
    by_pair = read_bandai_namco(tmp_path, label="content_style")
    assert by_style.class_names == list(STYLES) and sorted(by_style.labels.tolist()) == [0, 1, 1, 6, 6]
    assert len(by_pair.class_names) == 70 and by_pair.class_names[3 * 7 + 6] == "run, youthful"
    assert np.array_equal(by_pair.labels, by_content.labels * 7 + by_style.labels)
    assert sorted(by_pair.labels.tolist()) == [1, 1, 21, 27, 27]
    assert np.array_equal(by_style.split, by_content.split) and np.array_equal(by_pair.split, by_content.split)
    for dataset in (by_content, by_style, by_pair):
        assert dataset.style_names == list(STYLES) and np.array_equal(dataset.styles, by_style.labels)
    swapped = by_content.labelled_by_style()  # the style as the class, for a style evaluator
    assert np.array_equal(swapped.labels, by_style.labels) and swapped.class_names == by_style.class_names
    assert np.array_equal(swapped.styles, by_content.labels) and swapped.style_names == by_content.class_names
    with pytest.raises(ValueError, match="no styles"):
        replace(by_content, styles=None, style_names=None).labelled_by_style()
    with pytest.raises(ConfigError, match="label must be one of content, style, content_style"):
        read_bandai_namco(tmp_path, label="mood")


def test_held_out_cells_are_seeded_and_never_take_a_whole_cell() -> None:
    cells = np.repeat([0, 1, 2], [10, 2, 1])
    test = held_out_cells(cells, 0.2, seed=0)
    assert [int(test[cells == c].sum()) for c in (0, 1, 2)] == [2, 1, 0]
    assert np.array_equal(test, held_out_cells(cells, 0.2, seed=0))
    assert len({tuple(held_out_cells(cells, 0.2, seed=s)) for s in range(6)}) > 1
    with pytest.raises(ConfigError, match="share"):
        held_out_cells(cells, 1.0, seed=0)


def test_a_bandai_clip_without_its_json_or_joints_is_refused(tmp_path: Path) -> None:
    write_bandai_clip(tmp_path, 0, 0, 0)
    next(tmp_path.glob("*.json")).unlink()
    with pytest.raises(DataFormatError, match="missing: every .bvh needs its .json"):
        read_bandai_namco(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "dataset-2_x_active_001.bvh").write_text(CHAIN)
    (other / "dataset-2_x_active_001.json").write_text('{"content": 0, "style": 0}')
    with pytest.raises(DataFormatError, match="not a Bandai Namco file"):
        read_bandai_namco(other)


def real_bandai_dir() -> Path:
    if os.environ.get("BANDAI_NAMCO_DIR"):
        return Path(os.environ["BANDAI_NAMCO_DIR"])
    return Path(__file__).resolve().parents[1] / "datasets/Bandai-Namco-Research-Motiondataset-2/data"


def test_real_bandai_namco_clips_keep_their_bone_lengths() -> None:
    folder = real_bandai_dir()
    if not folder.is_dir():
        pytest.skip(f"Bandai Namco data not found at {folder} (set BANDAI_NAMCO_DIR)")
    wanted = bvh_joint_names()
    for file in sorted(folder.glob("*.bvh"))[::400]:
        motion = read_bvh(file)
        positions = motion.positions()
        keep = [motion.joint_names.index(name) for name in wanted]
        parents = [motion.parents[j] for j in keep[1:]]
        bones = np.linalg.norm(positions[:, keep[1:]] - positions[:, parents], axis=-1)
        assert np.ptp(bones, axis=0).max() < 1e-3 * max(bones.max(), 1.0), file.name
        assert positions[..., 1].max() > 100  # a standing person, in centimetres


def test_any_bvh_file_or_folder_reads_as_an_unlabelled_dataset(tmp_path: Path) -> None:
    (tmp_path / "a.bvh").write_text(CHAIN)
    (tmp_path / "b.bvh").write_text(CHAIN.replace("Frames: 2", "Frames: 1").replace("0 0 0  90 0 0  0 0 0  0 90 0\n", ""))
    one = read_dataset("bvh", tmp_path / "a.bvh")
    assert len(one) == 1 and one.skeleton.joint_names == ("hips", "knee", "foot") and one.fps == pytest.approx(25)
    both = read_dataset("bvh", tmp_path, min_frames=1)
    assert both.clip_ids == ["a", "b"] and both.class_names == ["unlabelled"]
    np.testing.assert_allclose(both.clips[0][0], [[1, 5, 0], [1, 3, 0], [1, 0, 0]], atol=1e-6)
    (tmp_path / "c.bvh").write_text(CHAIN.replace("JOINT foot", "JOINT toe"))
    with pytest.raises(DataFormatError, match="c.bvh: its hierarchy differs from a.bvh's"):
        read_dataset("bvh", tmp_path, min_frames=1)


def test_bandai_namco_archive_keeps_its_skeleton_and_clips_can_be_made_upright(tmp_path: Path) -> None:
    for number in range(2):
        write_bandai_clip(tmp_path / "data", 2, style=3, number=number, seed=number)
    dataset = read_bandai_namco(tmp_path)
    loaded = read_archive(write_archive(dataset, tmp_path / "bandai.npz"))
    assert loaded.skeleton == dataset.skeleton and loaded.skeleton.name == SKELETON
    hips, shoulders = trunk_pairs(loaded.skeleton)
    names = loaded.skeleton.joint_names
    assert (names[hips[0]], names[hips[1]]) == ("upper_leg_left", "upper_leg_right")
    assert (names[shoulders[0]], names[shoulders[1]]) == ("shoulder_left", "shoulder_right")
    clip, valid = prepare_clip(loaded.clips[0], loaded.skeleton, ClipPipelineConfig(num_frames=8), False,
                               np.random.default_rng(0))
    assert clip.shape == (8, 21, 3) and valid == 8 and np.isfinite(clip).all()

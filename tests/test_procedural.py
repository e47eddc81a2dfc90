"""The built-in procedural dataset: layout, determinism, split, plausible bodies, class motions, cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mdm.data import procedural
from mdm.data.archive import read_archive
from mdm.data.dataset import MotionDataset
from mdm.data.procedural import (
    CLASS_NAMES,
    FPS,
    cache_path,
    generate_procedural_dataset,
    load_default_dataset,
    nearest_centroid_accuracy,
)
from mdm.errors import ConfigError
from mdm.skeleton import load_skeleton

SKELETON = load_skeleton("kinect_v1")
J = {name: index for index, name in enumerate(SKELETON.joint_names)}
STANDING = ("wave", "raise_one_arm", "punch", "clap", "raise_both_arms", "bow")


@pytest.fixture(scope="module")
def default() -> MotionDataset:
    return generate_procedural_dataset(seed=0)


@pytest.fixture(scope="module")
def clean() -> MotionDataset:
    """Noise-free, level camera: exact kinematics to check bodies and motions against."""
    return generate_procedural_dataset(seed=5, clips_per_class=10, noise_std=0.0, max_pitch_deg=0.0)


@pytest.fixture(scope="module")
def facing() -> MotionDataset:
    """Noise-free, every performer facing a level camera."""
    return generate_procedural_dataset(seed=2, clips_per_class=4, max_yaw_deg=0.0, max_pitch_deg=0.0, noise_std=0.0)


def clips_of(dataset: MotionDataset, name: str) -> list[np.ndarray]:
    return [dataset.clips[i] for i in np.flatnonzero(dataset.labels == dataset.class_names.index(name))]


def test_layout_and_metadata(default: MotionDataset) -> None:
    assert len(CLASS_NAMES) >= 10 and default.class_names == list(CLASS_NAMES)
    assert default.skeleton.name == "kinect_v1"
    assert len(default) == 48 * len(CLASS_NAMES)
    assert all(count >= 40 for count in default.class_counts().values())
    for clip in default.clips:
        assert clip.dtype == np.float32 and clip.shape[1:] == (20, 3) and 40 <= clip.shape[0] <= 80
        assert np.all(np.isfinite(clip))
    assert default.fps == FPS == 30.0
    assert default.source == "procedural-v1 seed=0"
    assert set(default.views.tolist()) == {1, 2, 3}
    assert set(default.subjects.tolist()) == set(range(1, 11))
    assert len(set(default.clip_ids)) == len(default)


def test_placed_like_nw_ucla(default: MotionDataset) -> None:
    frames = np.concatenate(default.clips)
    root = frames[:, J["hip_center"]]
    assert 2.3 < np.median(root[:, 2]) < 3.6  # about 3 m in front of the camera
    lowest_foot = frames[:, [J["foot_left"], J["foot_right"]], 1].min(axis=1)
    assert -0.9 < np.median(lowest_foot) < -0.45  # the floor lies below the camera, as in NW-UCLA
    height = np.median(frames[:, J["head"], 1] - lowest_foot)
    assert 1.3 < height < 1.7  # Kinect head-to-foot span of an adult, in metres


def test_subject_disjoint_split(default: MotionDataset) -> None:
    train, test = default.split_subset("train"), default.split_subset("test")
    assert set(test.subjects.tolist()) == {8, 9, 10}
    assert not set(train.subjects.tolist()) & set(test.subjects.tolist())
    assert len(train) + len(test) == len(default)
    assert all(count > 0 for count in train.class_counts().values())
    assert all(count > 0 for count in test.class_counts().values())


def test_deterministic_from_seed() -> None:
    first = generate_procedural_dataset(seed=3, clips_per_class=4)
    again = generate_procedural_dataset(seed=3, clips_per_class=4)
    other = generate_procedural_dataset(seed=4, clips_per_class=4)
    assert all(np.array_equal(a, b) for a, b in zip(first.clips, again.clips, strict=True))
    assert np.array_equal(first.views, again.views) and first.clip_ids == again.clip_ids
    assert not np.array_equal(first.clips[0][:40], other.clips[0][:40])


def test_bone_lengths_constant_within_a_clip(clean: MotionDataset, default: MotionDataset) -> None:
    for clip in clean.clips:
        lengths = np.stack([np.linalg.norm(clip[:, c] - clip[:, p], axis=-1) for p, c in SKELETON.bones], axis=1)
        np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), atol=1e-5)
    for clip in default.clips:  # with sensor noise, constant up to the noise
        lengths = np.stack([np.linalg.norm(clip[:, c] - clip[:, p], axis=-1) for p, c in SKELETON.bones], axis=1)
        assert np.median(np.abs(lengths - np.median(lengths, axis=0))) < 0.015


def test_upright_body_facing_the_camera(default: MotionDataset, clean: MotionDataset, facing: MotionDataset) -> None:
    for clip in clean.clips:
        assert np.all(clip[:, J["head"], 1] > clip[:, J["hip_center"], 1] + 0.05)
    for index in np.flatnonzero(default.labels != CLASS_NAMES.index("bow")):
        clip = default.clips[index]
        assert np.all(clip[:, J["head"], 1] > clip[:, J["hip_center"], 1] + 0.2)
    for clip in facing.clips[:4 * 4]:  # wave, raise_one_arm, punch, clap: no turning
        assert np.all(clip[:, J["hip_left"], 0] < clip[:, J["hip_right"], 0])  # performer's left at -x
        assert np.all(clip[:, J["foot_left"], 2] < clip[:, J["ankle_left"], 2])  # toes toward the camera
        hips = clip[:, [J["hip_left"], J["hip_right"]], 1].mean(axis=1)
        assert np.all(clip[:, J["knee_left"], 1] < hips) and np.all(clip[:, J["ankle_right"], 1] < hips)


def test_feet_on_the_floor_when_standing(clean: MotionDataset) -> None:
    feet = [J["ankle_left"], J["foot_left"], J["ankle_right"], J["foot_right"]]
    for name in STANDING:
        for clip in clips_of(clean, name):
            lowest = clip[:, feet, 1].min(axis=1)
            assert np.ptp(lowest) < 1e-4  # the floor does not move
            both = clip[:, [J["foot_left"], J["foot_right"]], 1]
            assert np.all(np.abs(both[:, 0] - both[:, 1]) < 0.05)  # both feet down
    for clip in clips_of(clean, "jump"):
        lowest = clip[:, feet, 1].min(axis=1)
        assert lowest.max() - lowest[0] > 0.05  # airborne at some point


def test_symmetric_actions_are_mirror_symmetric(facing: MotionDataset) -> None:
    """Seen from the front, both hands of a symmetric action mirror each other about the body's midline."""
    for name in ("clap", "raise_both_arms", "squat", "jump"):
        for clip in clips_of(facing, name):
            middle = clip[:, J["hip_center"], 0]
            left, right = clip[:, J["hand_left"]], clip[:, J["hand_right"]]
            assert np.mean(np.abs((left[:, 0] - middle) + (right[:, 0] - middle))) < 0.13, name  # idle sway: < 0.1
            assert np.mean(np.abs(left[:, 1] - right[:, 1])) < 0.08, name


def test_squat_lowers_the_hips_with_feet_planted(clean: MotionDataset) -> None:
    feet = [J["ankle_left"], J["foot_left"], J["ankle_right"], J["foot_right"]]
    for clip in clips_of(clean, "squat"):
        assert np.ptp(clip[:, feet, 1].min(axis=1)) < 1e-4
        assert clip[:, J["hip_center"], 1].min() < clip[0, J["hip_center"], 1] - 0.15
        ankles = clip[:, [J["ankle_left"], J["ankle_right"]]][..., [0, 2]]
        assert np.ptp(ankles, axis=0).max() < 0.045  # no sliding beyond the body's sway (3 cm)


def motion_energy(clips: list[np.ndarray], joints: list[int]) -> float:
    """Mean speed (m per frame) of ``joints`` over the clips."""
    return float(np.mean([np.linalg.norm(np.diff(clip[:, joints], axis=0), axis=-1).mean() for clip in clips]))


def test_classes_move_the_expected_body_parts(clean: MotionDataset) -> None:
    hands, feet = [J["hand_left"], J["hand_right"]], [J["foot_left"], J["foot_right"]]
    energy = {name: (motion_energy(clips_of(clean, name), hands), motion_energy(clips_of(clean, name), feet))
              for name in CLASS_NAMES}
    for name in ("wave", "clap", "punch", "raise_one_arm", "raise_both_arms"):
        assert energy[name][0] > 4 * energy[name][1], name
    for name in ("kick", "walk_in_place"):
        assert energy[name][1] > 4 * energy["wave"][1], name
    assert energy["kick"][1] > energy["kick"][0] * 0.8
    raised = [clip[-1, J["hand_left"], 1] > clip[-1, J["head"], 1] for clip in clips_of(clean, "raise_both_arms")]
    assert np.mean(raised) > 0.3  # clips that hold their arms up end with hands above the head


def test_left_handed_subjects_mirror_the_action(clean: MotionDataset) -> None:
    waving_left = set()
    for index in np.flatnonzero(clean.labels == CLASS_NAMES.index("wave")):
        clip = clean.clips[index]
        if clip[:, J["hand_left"], 1].max() > clip[:, J["hand_right"], 1].max():
            waving_left.add(int(clean.subjects[index]))
    assert len(waving_left) == 2
    assert len(waving_left & {8, 9, 10}) == 1  # one in each split


def test_nearest_centroid_is_informative_but_not_perfect(default: MotionDataset) -> None:
    accuracy = nearest_centroid_accuracy(default.split_subset("train"), default.split_subset("test"))
    chance = 1.0 / default.num_classes
    assert chance + 0.3 < accuracy < 0.9


def test_nearest_centroid_closed_form() -> None:
    """Two classes of constant poses: the right labels score 1, swapped labels 0."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 20, 3)).astype(np.float32)

    def toy(labels: list[int]) -> MotionDataset:
        clips = []
        for i, label in enumerate(labels):  # clips of different lengths; class 1 has its joints further from the root
            clip = np.repeat(base, 10 + i, axis=0)
            clip[:, 1:] += label + 0.01 * i
            clips.append(clip)
        return MotionDataset(clips=clips, labels=labels, class_names=["a", "b"], skeleton=SKELETON)

    train = toy([0, 0, 1, 1])
    assert nearest_centroid_accuracy(train, toy([0, 1, 1])) == 1.0
    swapped = toy([0, 1, 1])
    swapped.labels = 1 - swapped.labels
    assert nearest_centroid_accuracy(train, swapped) == 0.0


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="clips_per_class"):
        generate_procedural_dataset(clips_per_class=0)
    with pytest.raises(ConfigError, match="num_test_subjects"):
        generate_procedural_dataset(num_subjects=3, num_test_subjects=3)
    with pytest.raises(ConfigError, match="min_frames"):
        generate_procedural_dataset(min_frames=50, max_frames=40)


def test_cache_round_trip(tmp_path: Path, default: MotionDataset, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_default_dataset(cache_dir=tmp_path, seed=0)
    path = cache_path(tmp_path, 0)
    assert path.name == "procedural_v1_seed0.npz" and path.is_file()

    calls = []
    monkeypatch.setattr(procedural, "generate_procedural_dataset", lambda seed: calls.append(seed) or default)
    cached = load_default_dataset(cache_dir=tmp_path, seed=0)
    assert calls == []  # read from the cache, not generated again
    for dataset in (first, cached):
        assert all(np.array_equal(a, b) for a, b in zip(dataset.clips, default.clips, strict=True))
        assert np.array_equal(dataset.labels, default.labels) and np.array_equal(dataset.split, default.split)
        assert dataset.class_names == default.class_names and dataset.clip_ids == default.clip_ids
        assert np.array_equal(dataset.subjects, default.subjects) and np.array_equal(dataset.views, default.views)
        assert dataset.fps == 30.0 and dataset.source == default.source
        assert dataset.skeleton == default.skeleton

    path.write_bytes(b"not an archive")  # a broken cache is rebuilt, not fatal
    load_default_dataset(cache_dir=tmp_path, seed=0)
    assert calls == [0] and read_archive(path).source == default.source


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = Path(__file__).resolve().parents[1] / "run" / "make_procedural_dataset.py"
    spec = importlib.util.spec_from_file_location("make_procedural_dataset", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "small.npz"
    assert module.main(["--seed", "1", "--clips-per-class", "10", "--out", str(out)]) == 0
    dataset = read_archive(out)
    assert len(dataset) == 10 * len(CLASS_NAMES) and dataset.source == "procedural-v1 seed=1"
    assert "nearest-centroid" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--out"):
        module.main(["--clips-per-class", "10"])

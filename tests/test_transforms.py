"""Per-clip transforms: sampling, centring, view normalisation, augmentation, the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from mdm.config import from_dict
from mdm.data.transforms import (
    ClipPipelineConfig,
    center_crop,
    centre,
    change_speed,
    interpolate_frames,
    normalise_clip,
    prepare_clip,
    present_mask,
    random_crop,
    resample,
    rotate_vertical,
    rotation_about_axis,
    rotation_between,
    scale,
    side_direction,
)
from mdm.errors import ConfigError
from mdm.skeleton import Skeleton, load_skeleton

SKELETONS = ["kinect_v1", "kinect_v2", "smpl_24"]


def random_clip(skeleton: Skeleton, frames: int, seed: int = 0, persons: int | None = None) -> np.ndarray:
    """float32 ``[T, J, 3]`` (or ``[T, M, J, 3]``) of random non-zero positions."""
    rng = np.random.default_rng(seed)
    shape = (frames, skeleton.num_joints, 3) if persons is None else (frames, persons, skeleton.num_joints, 3)
    return (rng.normal(size=shape) + 0.1).astype(np.float32)


def ramp(frames: int, joints: int = 4) -> np.ndarray:
    """A clip moving linearly: ``clip[t] = a + b t``."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(joints, 3)), rng.normal(size=(joints, 3))
    return (a + b * np.arange(frames)[:, None, None]).astype(np.float32)


def bone_lengths(clip: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    parents, children = np.array(skeleton.bones).T
    return np.linalg.norm(clip[..., children, :] - clip[..., parents, :], axis=-1)


def test_random_crop_takes_a_window_of_the_clip() -> None:
    clip = ramp(30)
    out, valid = random_crop(clip, 20, np.random.default_rng(3))
    assert out.shape == (20, 4, 3) and valid == 20
    starts = [s for s in range(11) if np.array_equal(out, clip[s:s + 20])]
    assert len(starts) == 1


def test_crop_of_a_short_clip_pads_with_zeros_and_keeps_the_valid_length() -> None:
    clip = ramp(7)
    for out, valid in (random_crop(clip, 12, np.random.default_rng(0)), center_crop(clip, 12)):
        assert out.shape == (12, 4, 3) and valid == 7
        np.testing.assert_array_equal(out[:7], clip)
        assert not out[7:].any()


def test_centre_crop_is_central_and_random_crops_vary() -> None:
    clip = ramp(30)
    out, _ = center_crop(clip, 10)
    np.testing.assert_array_equal(out, clip[10:20])
    firsts = {float(random_crop(clip, 10, np.random.default_rng(s))[0][0, 0, 0]) for s in range(20)}
    assert len(firsts) > 3


def test_resample_of_a_linear_ramp_stays_linear() -> None:
    clip = ramp(23)
    out = resample(clip, 9)
    expected = clip[0] + (clip[1] - clip[0]) * np.linspace(0, 22, 9)[:, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    window = resample(clip, 16, np.random.default_rng(0), window_range=(0.4, 0.6))
    step = np.diff(window, axis=0)
    np.testing.assert_allclose(step, np.broadcast_to(step[0], step.shape), atol=1e-4)
    ratio = step[0] / (clip[1] - clip[0])
    assert np.allclose(ratio, ratio.flat[0], atol=1e-3) and 0.4 * 22 / 15 - 1e-3 <= ratio.flat[0] <= 0.6 * 22 / 15 + 1e-3


def test_resample_handles_a_single_frame_and_upsampling() -> None:
    clip = ramp(1)
    np.testing.assert_array_equal(resample(clip, 5), np.repeat(clip, 5, axis=0))
    out = resample(ramp(3), 5)
    np.testing.assert_allclose(out[1], (ramp(3)[0] + ramp(3)[1]) / 2, rtol=1e-6)


def test_change_speed_sets_the_length_and_keeps_the_ends() -> None:
    clip = ramp(41)
    fast, slow = change_speed(clip, 2.0), change_speed(clip, 0.5)
    assert fast.shape[0] == round(41 / 2.0) and slow.shape[0] == 82
    for out in (fast, slow):
        np.testing.assert_allclose(out[[0, -1]], clip[[0, -1]], atol=1e-5)
        step = np.diff(out, axis=0)
        np.testing.assert_allclose(step, np.broadcast_to(step[0], step.shape), atol=1e-4)


def test_interpolation_never_blends_an_absent_person_with_zeros() -> None:
    skeleton = load_skeleton("kinect_v1")
    clip = random_clip(skeleton, 20, persons=2)
    clip[8:12, 1] = 0.0
    out = interpolate_frames(clip, np.linspace(0, 19, 37))
    positions = np.linspace(0, 19, 37)
    np.testing.assert_array_equal(present_mask(out)[:, 1], present_mask(clip)[np.rint(positions).astype(int), 1])
    absent = ~present_mask(out)[:, 1]
    assert absent.any() and not out[absent, 1].any()


@pytest.mark.parametrize("name", SKELETONS)
def test_rotation_keeps_bone_lengths_and_heights(name: str) -> None:
    skeleton = load_skeleton(name)
    clip = random_clip(skeleton, 8)
    out = rotate_vertical(clip, 1.1, skeleton.up_axis)
    np.testing.assert_allclose(bone_lengths(out, skeleton), bone_lengths(clip, skeleton), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], clip[..., 1], atol=1e-6)
    assert not np.allclose(out, clip)
    np.testing.assert_allclose(rotate_vertical(out, -1.1, skeleton.up_axis), clip, atol=1e-5)


def test_rotation_by_a_quarter_turn_about_y_maps_z_to_x() -> None:
    point = np.array([[[0.0, 0.0, 1.0]]], np.float32)
    np.testing.assert_allclose(rotate_vertical(point, np.pi / 2, 1), [[[1.0, 0.0, 0.0]]], atol=1e-7)


def hip_line(clip: np.ndarray, skeleton: Skeleton, part: str = "hip") -> np.ndarray:
    names = skeleton.joint_names
    left = next(i for i, n in enumerate(names) if part in n and "left" in n)
    right = next(i for i, n in enumerate(names) if part in n and "right" in n)
    return clip[0, left] - clip[0, right]


@pytest.mark.parametrize("name", SKELETONS)
def test_view_normalisation_puts_the_hip_line_along_x(name: str) -> None:
    skeleton = load_skeleton(name)
    for angle in (0.3, 2.0, -2.9):
        clip = rotate_vertical(random_clip(skeleton, 5), angle, skeleton.up_axis)
        out = normalise_clip(clip, skeleton, upright=False, view=True)
        line = hip_line(out, skeleton)
        assert abs(line[2]) < 1e-5 and line[0] > 0
        np.testing.assert_allclose(np.linalg.norm(line), np.linalg.norm(hip_line(clip, skeleton)), rtol=1e-5)
        np.testing.assert_allclose(out[..., 1], clip[..., 1], atol=1e-6)


def test_view_normalisation_of_a_z_up_skeleton_with_shoulders_only() -> None:
    names = ["pelvis", "chest", "left_shoulder", "right_shoulder", "left_foot"]
    skeleton = Skeleton.from_parents([-1, 0, 1, 1, 0], names, up_axis=2)
    clip = random_clip(skeleton, 4)
    out = normalise_clip(clip, skeleton, upright=False, view=True)
    line = hip_line(out, skeleton, "shoulder")
    assert abs(line[1]) < 1e-5 and line[0] > 0
    np.testing.assert_allclose(out[..., 2], clip[..., 2], atol=1e-6)


def test_view_normalisation_refuses_a_skeleton_without_sides() -> None:
    skeleton = Skeleton.from_parents([-1, 0, 1])
    with pytest.raises(ConfigError, match="hips or shoulders"):
        normalise_clip(random_clip(skeleton, 3), skeleton, upright=False, view=True)


def pose_sequence(skeleton: Skeleton, frames: int, seed: int = 0) -> np.ndarray:
    """float32 ``[T, J, 3]``: one random pose with small per-frame jitter, each left joint on the +x side."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(scale=0.3, size=(skeleton.num_joints, 3))
    for left, right in skeleton.mirror_pairs:  # each left joint on the +x side of its right twin
        pose[left, 0], pose[right, 0] = abs(pose[left, 0]) + 0.1, -abs(pose[right, 0]) - 0.1
    return (pose + rng.normal(scale=0.01, size=(frames, skeleton.num_joints, 3))).astype(np.float32)


@pytest.mark.parametrize("name", SKELETONS)
def test_whole_clip_view_reference_undoes_any_turn_and_tilt(name: str) -> None:
    skeleton = load_skeleton(name)
    up = skeleton.up_axis
    clip = pose_sequence(skeleton, 12)
    canonical = normalise_clip(clip, skeleton, upright=True, view=True, reference="clip")
    for yaw, tilt in ((0.4, 0.2), (2.8, -0.3), (-1.9, 0.1)):
        turn = rotation_about_axis(yaw, up) @ rotation_about_axis(tilt, (up + 1) % 3)
        turned = (clip @ turn.T).astype(np.float32)
        out = normalise_clip(turned, skeleton, upright=True, view=True, reference="clip")
        np.testing.assert_allclose(out, canonical, atol=1e-4)
        np.testing.assert_allclose(bone_lengths(out, skeleton), bone_lengths(clip, skeleton), rtol=1e-4)
    assert side_direction(canonical, skeleton, "clip")[lateral_index(up)] > 0


def lateral_index(up: int) -> int:
    return 2 if up == 0 else 0


def test_whole_clip_view_reference_resists_one_bad_first_frame() -> None:
    """A first frame whose hips are twisted by 60 degrees turns the first-frame normalisation by
    about that much, the whole-clip one by a few degrees."""
    skeleton = load_skeleton("kinect_v1")
    clip = pose_sequence(skeleton, 30)
    hips = [skeleton.joint_names.index("hip_left"), skeleton.joint_names.index("hip_right")]
    shoulders = [skeleton.joint_names.index("shoulder_left"), skeleton.joint_names.index("shoulder_right")]
    middle = clip[0, hips].mean(axis=0)
    twisted = clip.copy()
    twisted[0, hips] = middle + (clip[0, hips] - middle) @ rotation_about_axis(np.deg2rad(60), 1).T.astype(np.float32)

    def yaw_change(reference: str) -> float:
        before = normalise_clip(clip, skeleton, upright=False, view=True, reference=reference)
        after = normalise_clip(twisted, skeleton, upright=False, view=True, reference=reference)
        a, b = (out[5, shoulders[0]] - out[5, shoulders[1]] for out in (before, after))
        return abs(np.degrees(np.arctan2(a[2], a[0]) - np.arctan2(b[2], b[0])))

    assert yaw_change("first_frame") == pytest.approx(60, abs=1)
    assert yaw_change("clip") < 2


def test_whole_clip_view_reference_refuses_a_skeleton_without_pairs() -> None:
    skeleton = Skeleton.from_parents([-1, 0, 1])
    with pytest.raises(ConfigError, match="left/right joint pairs"):
        normalise_clip(random_clip(skeleton, 3), skeleton, upright=False, view=True, reference="clip")


def trunk(clip: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    middle = {part: (clip[0, hip_line_joints(skeleton, part)]).mean(axis=0) for part in ("hip", "shoulder")}
    return middle["shoulder"] - middle["hip"]


def hip_line_joints(skeleton: Skeleton, part: str) -> list[int]:
    names = skeleton.joint_names
    return [next(i for i, n in enumerate(names) if part in n and side in n) for side in ("left", "right")]


def test_rotation_between_takes_one_direction_to_the_other() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.normal(size=3), rng.normal(size=3)
        rotation = rotation_between(a, b)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-10)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        np.testing.assert_allclose(rotation @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-10)
    np.testing.assert_array_equal(rotation_between(np.zeros(3), np.ones(3)), np.eye(3))


@pytest.mark.parametrize("name", SKELETONS)
def test_upright_points_the_first_frames_trunk_up_and_keeps_bone_lengths(name: str) -> None:
    skeleton = load_skeleton(name)
    up = skeleton.up_axis
    tilted = rotation_about_axis(0.4, (up + 1) % 3) @ rotation_about_axis(-0.3, (up + 2) % 3)
    clip = (random_clip(skeleton, 6) @ tilted.T).astype(np.float32)
    out = normalise_clip(clip, skeleton, upright=True, view=False)
    direction = trunk(out, skeleton) / np.linalg.norm(trunk(out, skeleton))
    np.testing.assert_allclose(direction, np.eye(3)[skeleton.up_axis], atol=1e-5)
    np.testing.assert_allclose(bone_lengths(out, skeleton), bone_lengths(clip, skeleton), rtol=1e-4)
    with pytest.raises(ConfigError, match="upright"):
        normalise_clip(clip[:, :3], Skeleton.from_parents([-1, 0, 1]), upright=True, view=False)


def test_tilt_augmentation_keeps_bone_lengths_and_varies_the_height_axis() -> None:
    skeleton = load_skeleton("kinect_v1")
    clip = random_clip(skeleton, 20)
    config = ClipPipelineConfig(num_frames=20, tilt_deg=20.0)
    outs = [prepare_clip(clip, skeleton, config, True, np.random.default_rng(seed))[0] for seed in range(3)]
    centred = prepare_clip(clip, skeleton, ClipPipelineConfig(num_frames=20), False, np.random.default_rng(0))[0]
    for out in outs:
        np.testing.assert_allclose(bone_lengths(out, skeleton), bone_lengths(centred, skeleton), rtol=1e-4)
        assert not np.allclose(out[..., 1], centred[..., 1], atol=1e-3)
    with pytest.raises(ConfigError, match="tilt_deg"):
        ClipPipelineConfig(tilt_deg=-1.0)


def test_centring_first_frame_and_per_frame() -> None:
    skeleton = load_skeleton("smpl_24")
    clip = random_clip(skeleton, 6)
    first = centre(clip, skeleton, "first_frame")
    assert np.allclose(first[0, skeleton.root], 0) and not np.allclose(first[1:, skeleton.root], 0)
    np.testing.assert_allclose(first - clip, np.broadcast_to(-clip[0, skeleton.root], clip.shape), atol=1e-6)
    assert np.allclose(centre(clip, skeleton, "per_frame")[:, skeleton.root], 0)


def test_multi_person_centring_keeps_relative_places_and_absent_persons() -> None:
    skeleton = load_skeleton("kinect_v2")
    clip = random_clip(skeleton, 6, persons=2)
    clip[:2, 0] = 0.0
    clip[4, 1] = 0.0
    out = centre(clip, skeleton, "first_frame")
    np.testing.assert_array_equal(present_mask(out), present_mask(clip))
    assert np.allclose(out[0, 1, skeleton.root], 0)
    np.testing.assert_allclose(out[3, 0] - out[3, 1], clip[3, 0] - clip[3, 1], atol=1e-5)
    per_frame = centre(clip, skeleton, "per_frame")
    assert np.allclose(per_frame[[0, 1], 1, skeleton.root], 0) and np.allclose(per_frame[2:, 0, skeleton.root], 0)
    assert not per_frame[4, 1].any() and not per_frame[:2, 0].any()


def test_scale_and_rotation_keep_absent_persons_zero() -> None:
    skeleton = load_skeleton("kinect_v2")
    clip = random_clip(skeleton, 5, persons=2)
    clip[:, 1] = 0.0
    for out in (scale(clip, 1.3), rotate_vertical(clip, 0.7, 1)):
        assert not out[:, 1].any() and out[:, 0].all()


def full_augmentation(**overrides: object) -> ClipPipelineConfig:
    values = dict(num_frames=16, sampling="crop", centre="first_frame", view_normalise=True, rotation_deg=30.0,
                  scale_range=(0.8, 1.2), speed_range=(0.7, 1.3))
    values.update(overrides)
    return ClipPipelineConfig(**values)


def test_prepare_clip_shapes_and_valid_lengths() -> None:
    skeleton = load_skeleton("kinect_v1")
    rng = np.random.default_rng(0)
    out, valid = prepare_clip(random_clip(skeleton, 40), skeleton, ClipPipelineConfig(num_frames=16), True, rng)
    assert out.shape == (16, 20, 3) and out.dtype == np.float32 and valid == 16
    out, valid = prepare_clip(random_clip(skeleton, 9), skeleton, full_augmentation(), False, rng)
    assert out.shape == (16, 20, 3) and valid == 9 and not out[9:].any() and out[:9].any()
    out, valid = prepare_clip(random_clip(skeleton, 9, persons=2), skeleton, full_augmentation(), True, rng)
    assert out.shape == (16, 2, 20, 3) and not out[valid:].any()


def test_prepare_clip_is_reproducible_and_evaluation_ignores_the_seed() -> None:
    skeleton = load_skeleton("kinect_v1")
    clip = random_clip(skeleton, 40)
    for config in (full_augmentation(), full_augmentation(sampling="resample", speed_range=(1.0, 1.0),
                                                          window_range=(0.5, 1.0))):
        def run(seed: int, train: bool) -> tuple[np.ndarray, int]:
            return prepare_clip(clip, skeleton, config, train, np.random.default_rng(seed))
        np.testing.assert_array_equal(run(5, True)[0], run(5, True)[0])
        assert not np.allclose(run(5, True)[0], run(6, True)[0])
        np.testing.assert_array_equal(run(5, False)[0], run(6, False)[0])


def test_prepare_clip_keeps_an_absent_person_zero_under_augmentation() -> None:
    skeleton = load_skeleton("kinect_v2")
    clip = random_clip(skeleton, 30, persons=2)
    clip[:, 1] = 0.0
    clip[10:15, 0] = 0.0
    for seed in range(5):
        out, valid = prepare_clip(clip, skeleton, full_augmentation(), True, np.random.default_rng(seed))
        assert not out[:, 1].any()
        assert present_mask(out[:valid])[:, 0].sum() >= valid - 8


def test_eval_pipeline_normalises_the_view_and_centres() -> None:
    skeleton = load_skeleton("kinect_v1")
    clip = rotate_vertical(random_clip(skeleton, 30), 1.2, 1) + np.float32(3.0)
    out, _ = prepare_clip(clip, skeleton, ClipPipelineConfig(num_frames=10, view_normalise=True), False,
                          np.random.default_rng(0))
    assert np.allclose(out[0, skeleton.root], 0, atol=1e-6)
    line = hip_line(out, skeleton)
    assert abs(line[2]) < 1e-5 and line[0] > 0


def test_config_from_yaml_mapping_and_refusals() -> None:
    config = from_dict(ClipPipelineConfig, {"num_frames": 32, "sampling": "crop", "scale_range": [0.9, 1.1]})
    assert config.scale_range == (0.9, 1.1) and config.num_frames == 32
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(ClipPipelineConfig, {"num_frame": 32})
    with pytest.raises(ConfigError, match="sampling"):
        from_dict(ClipPipelineConfig, {"sampling": "random"})
    bad = [dict(num_frames=0), dict(sampling="resample", speed_range=(0.8, 1.2)),
           dict(sampling="crop", window_range=(0.5, 1.0)), dict(scale_range=(0.0, 1.0)),
           dict(scale_range=(1.2, 0.8)), dict(rotation_deg=-5.0),
           dict(window_range=(0.5, 1.5)), dict(centre="root"),
           dict(view_reference="last_frame")]
    for values in bad:
        with pytest.raises(ConfigError):
            ClipPipelineConfig(**values)

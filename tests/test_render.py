"""Rendering: stick-figure frames and videos, the figure geometry, SMPL meshes with a fake model file."""

from __future__ import annotations

import json
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
import trimesh
from format_files import real_nw_ucla_dir
from render_files import kinect_clip, smpl_rest_joints, write_fake_smpl_model

from benchmarks.render_suite import SuiteConfig, run_suite
from mdm.errors import ConfigError, UserError
from mdm.render import View, check_video_path, render_frames, render_video, write_video
from mdm.render.figure import facing_azimuth, resolve_grid, to_plot
from mdm.render.mesh import (
    MeshSequence,
    SmplBody,
    export_meshes,
    render_mesh_frames,
    render_mesh_video,
)
from mdm.render.stick import CENTRE, LEFT, PERSON_COLOURS, RIGHT, joint_sides
from mdm.rotations import axis_angle_to_matrix, matrix_to_rotation_6d
from mdm.skeleton import Skeleton, load_skeleton

KINECT = load_skeleton("kinect_v1")
SMALL = View(panel_size=64, dpi=40)
NW_UCLA_DIR = real_nw_ucla_dir()


def colour_mask(frame: np.ndarray, hex_colour: str, tolerance: int = 40) -> np.ndarray:
    """bool ``[H, W]``: pixels within ``tolerance`` of the colour on every channel."""
    rgb = np.array([int(hex_colour[i: i + 2], 16) for i in (1, 3, 5)])
    return np.all(np.abs(frame.astype(int) - rgb) < tolerance, axis=-1)


def without_counter(frames: np.ndarray) -> np.ndarray:
    """Frames with the bottom-left frame counter blanked."""
    frames = frames.copy()
    frames[:, -16:, :40] = 255
    return frames


def assert_upright_front_view(frame: np.ndarray) -> None:
    """The head is the highest part, the legs reach far below it, and the figure's left is on the viewer's right."""
    centre, left, right = (colour_mask(frame, colour) for colour in PERSON_COLOURS[0])
    limbs = left | right
    centre_rows, limb_rows = np.flatnonzero(centre.any(1)), np.flatnonzero(limbs.any(1))
    assert centre_rows.min() < limb_rows.min()
    assert limb_rows.max() - centre_rows.min() > 0.6 * (centre_rows.max() - centre_rows.min())
    assert np.nonzero(left)[1].mean() > np.nonzero(right)[1].mean()


def test_frames_have_the_count_and_size_asked_for():
    frames = render_frames(kinect_clip(5), KINECT, view=SMALL)
    assert frames.shape == (5, 64, 64, 3) and frames.dtype == np.uint8
    titled = render_frames(kinect_clip(3), KINECT, title="a title", titles=["clip"], view=View(panel_size=50, dpi=40))
    assert titled.shape == (3, 64 + 32, 64, 3)  # panel rounded up to 64; a 32-pixel title band


def test_moving_clip_frames_differ_still_clip_frames_do_not():
    moving = without_counter(render_frames(kinect_clip(4), KINECT, view=SMALL))
    still = without_counter(render_frames(kinect_clip(4, moving=False), KINECT, view=SMALL))
    assert all(np.any(moving[i] != moving[i + 1]) for i in range(3))
    assert all(np.array_equal(still[0], still[i]) for i in range(1, 4))
    # The counter itself changes every frame, so every frame of a video differs.
    raw = render_frames(kinect_clip(2, moving=False), KINECT, view=SMALL)
    assert np.any(raw[0] != raw[1])


def test_torch_tensors_render_like_arrays():
    clip = kinect_clip(2)
    np.testing.assert_array_equal(render_frames(torch.from_numpy(clip), KINECT, view=SMALL),
                                  render_frames(clip, KINECT, view=SMALL))


def test_figure_stands_up_and_is_not_mirrored():
    frame = render_frames(kinect_clip(1, moving=False), KINECT, view=View(panel_size=160, dpi=80))[0]
    assert_upright_front_view(frame)


@pytest.mark.skipif(not (NW_UCLA_DIR / "a01_s01_e00_v01.json").is_file(), reason="NW-UCLA data not present")
def test_real_nw_ucla_clip_stands_up():
    record = json.loads((NW_UCLA_DIR / "a01_s01_e00_v01.json").read_text())
    clip = np.asarray(record["skeletons"], dtype=np.float32)[:3]
    frame = render_frames(clip, KINECT, view=View(panel_size=160, dpi=80))[0]
    assert_upright_front_view(frame)


def test_plot_axes_are_a_rotation_putting_up_on_z():
    for up_axis in range(3):
        matrix = to_plot(np.eye(3), up_axis)  # rows: the data axes in plot coordinates
        assert np.linalg.det(matrix) == pytest.approx(1.0)
        np.testing.assert_array_equal(matrix[up_axis], [0.0, 0.0, 1.0])


def test_facing_azimuth_points_where_the_figure_faces():
    clip = kinect_clip(2, moving=False)  # faces +z, which is plot +x for a y-up skeleton
    points = to_plot(clip.astype(np.float64), KINECT.up_axis)[:, None]
    present = np.ones((2, 1), dtype=bool)
    assert facing_azimuth(points, present, KINECT) == pytest.approx(0.0, abs=1e-9)
    turned = points.copy()
    turned[..., :2] = -turned[..., :2]  # half a turn about the vertical axis
    assert abs(facing_azimuth(turned, present, KINECT)) == pytest.approx(180.0)
    no_sides = Skeleton.from_parents(KINECT.parents)
    assert facing_azimuth(points, present, no_sides) is None


def test_left_and_right_joints_from_mirror_pairs_and_names():
    sides = joint_sides(KINECT)
    names = KINECT.joint_names
    assert sides[names.index("elbow_left")] == LEFT and sides[names.index("knee_right")] == RIGHT
    assert sides[names.index("head")] == CENTRE and sides[names.index("spine")] == CENTRE
    assert np.all(joint_sides(Skeleton.from_parents(KINECT.parents)) == CENTRE)


def test_grid_tiles_clips_and_leaves_spare_cells_blank():
    clips = [kinect_clip(3), kinect_clip(2), kinect_clip(3, moving=False)]
    frames = render_frames(clips, KINECT, grid=(2, 2), view=SMALL)
    assert frames.shape == (3, 128, 128, 3)
    cells = [frames[:, r * 64: (r + 1) * 64, c * 64: (c + 1) * 64] for r in range(2) for c in range(2)]
    single = render_frames(clips[0], KINECT, view=SMALL)
    np.testing.assert_array_equal(cells[1][:, :-16], render_frames(clips[1], KINECT, view=SMALL)[[0, 1, 1], :-16])
    np.testing.assert_array_equal(cells[0][:, :-16], single[:, :-16])  # each cell is that clip alone
    assert np.all(cells[3] == 255)
    assert resolve_grid(3, None) == (3, 1) and resolve_grid(10, None) == (4, 3)
    with pytest.raises(ConfigError, match="2x1 has 2 cells for 3 clips"):
        render_frames(clips, KINECT, grid=(2, 1), view=SMALL)
    with pytest.raises(ValueError, match="2 titles for 3 clips"):
        render_frames(clips, KINECT, titles=["a", "b"], view=SMALL)


def test_absent_person_is_not_drawn():
    clip = kinect_clip(3)
    pair = np.zeros((3, 2, 20, 3), dtype=np.float32)
    pair[:, 0] = clip
    np.testing.assert_array_equal(render_frames(pair, KINECT, view=SMALL), render_frames(clip, KINECT, view=SMALL))
    pair[1:, 1] = clip[1:] + np.array([0.0, 0.0, 1.0], dtype=np.float32)  # a second person from frame 1 on
    frames = render_frames(pair, KINECT, view=View(panel_size=96, dpi=40))
    second = colour_mask(frames[2], PERSON_COLOURS[1][LEFT])
    assert not colour_mask(frames[0], PERSON_COLOURS[1][LEFT]).any() and second.any()


def test_bad_clip_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\[T, 20, 3\]"):
        render_frames(np.zeros((4, 19, 3)), KINECT, view=SMALL)
    with pytest.raises(ValueError, match="NaN"):
        render_frames(np.full((2, 20, 3), np.nan), KINECT, view=SMALL)


@pytest.mark.parametrize("suffix", ["mp4", "gif"])
def test_video_files_are_written_and_read_back(tmp_path, suffix):
    path = render_video([kinect_clip(7), kinect_clip(5)], KINECT, tmp_path / "out" / f"clip.{suffix}", fps=10,
                        titles=["walk\nreal", "walk\ngenerated"], view=SMALL)
    assert path == tmp_path / "out" / f"clip.{suffix}"
    frames = imageio.mimread(path, format="FFMPEG" if suffix == "mp4" else "GIF", memtest=False)
    assert len(frames) == 7
    assert frames[0].shape[:2] == (64, 128)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_checking_a_video_path_creates_nothing(tmp_path):
    path = tmp_path / "new" / "deeper" / "clip.mp4"
    assert check_video_path(path) == path
    assert not (tmp_path / "new").exists()


def test_refused_outputs_and_failed_writes_leave_nothing(tmp_path):
    with pytest.raises(ConfigError, match="unsupported video extension '.avi'"):
        render_video(kinect_clip(2), KINECT, tmp_path / "clip.avi", view=SMALL)
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot create the output folder"):
        render_video(kinect_clip(2), KINECT, tmp_path / "file" / "clip.mp4", view=SMALL)
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        render_video(kinect_clip(2), KINECT, tmp_path / "dir.mp4", view=SMALL)

    def failing_frames():
        yield np.zeros((64, 64, 3), dtype=np.uint8)
        raise RuntimeError("renderer broke")

    (tmp_path / "keep.gif").write_bytes(b"old")
    for name in ("broken.mp4", "keep.gif"):
        with pytest.raises(RuntimeError, match="renderer broke"):
            write_video(failing_frames(), tmp_path / name, fps=30)
    assert not (tmp_path / "broken.mp4").exists()
    assert (tmp_path / "keep.gif").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.mp4", "file", "keep.gif"]


def test_mp4_without_imageio_ffmpeg_is_refused_before_rendering_and_gif_still_works(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if the package were not installed
    with pytest.raises(UserError, match="needs the imageio-ffmpeg package"):
        render_video(kinect_clip(2), KINECT, tmp_path / "clip.mp4", view=SMALL)
    assert render_video(kinect_clip(2), KINECT, tmp_path / "clip.gif", view=SMALL).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif"]


def test_smpl_body_poses_the_fake_model_in_closed_form(tmp_path):
    model = write_fake_smpl_model(tmp_path / "smpl" / "SMPL_NEUTRAL.pkl")
    body = SmplBody(tmp_path)
    rest, template = smpl_rest_joints(), model["v_template"]
    translation = torch.tensor([[0.5, 0.9, -1.0], [0.0, 1.0, 0.0]])
    identity = body.pose(torch.eye(3).expand(2, 24, 3, 3), translation)
    np.testing.assert_allclose(identity.vertices[0], template - rest[0] + translation[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(identity.joints[1], rest - rest[0] + translation[1].numpy(), atol=1e-5)
    assert identity.faces.shape == (96, 3) and identity.skeleton.name == "smpl_24"

    turn = torch.zeros(2, 24, 3)
    turn[:, 0, 1] = torch.pi / 2  # the root turns a quarter about y; every other joint stays at rest
    rotation = axis_angle_to_matrix(turn)
    turned = body.pose(matrix_to_rotation_6d(rotation), translation)
    expected = (template - rest[0]) @ rotation[0, 0].double().numpy().T + translation[0].numpy()
    np.testing.assert_allclose(turned.vertices[0], expected, atol=1e-5)
    np.testing.assert_allclose(body.pose(rotation, translation).vertices, turned.vertices, atol=1e-5)


def test_mesh_frames_files_and_video(tmp_path):
    write_fake_smpl_model(tmp_path / "SMPL_NEUTRAL.pkl")
    turn = torch.zeros(3, 24, 3)
    turn[:, 18, 2] = torch.linspace(0.0, 1.0, 3)  # the left elbow bends
    mesh = SmplBody(tmp_path).pose(matrix_to_rotation_6d(axis_angle_to_matrix(turn)), torch.zeros(3, 3))
    frames = without_counter(render_mesh_frames([mesh, mesh], titles=["a", "b"], view=SMALL))
    assert frames.shape == (3, 64, 128, 3)
    assert np.any(frames[0] != frames[2])
    shaded = frames[0][(frames[0].max(-1) - frames[0].min(-1)) > 30]  # the bluish body, not the grey ground
    assert len(shaded) > 0

    paths = export_meshes(mesh, tmp_path / "meshes", "obj")
    assert [p.name for p in paths] == ["frame_0000.obj", "frame_0001.obj", "frame_0002.obj"]
    loaded = trimesh.load(paths[2], process=False)
    np.testing.assert_allclose(loaded.vertices, mesh.vertices[2], atol=1e-5)
    assert len(trimesh.load(export_meshes(mesh, tmp_path / "ply")[0], process=False).faces) == 96
    with pytest.raises(ConfigError, match="unknown mesh format 'stl'"):
        export_meshes(mesh, tmp_path / "x", "stl")

    video = render_mesh_video(mesh, tmp_path / "mesh.gif", fps=5, view=SMALL)
    assert len(imageio.mimread(video, format="GIF")) == 3
    with pytest.raises(ValueError, match="faces index vertices"):
        MeshSequence(mesh.vertices, mesh.faces + 1000)


def test_missing_smpl_files_say_where_to_put_them(tmp_path):
    with pytest.raises(UserError, match=r"SMPL_NEUTRAL\.pkl not found.*smpl/SMPL_NEUTRAL\.pkl"):
        SmplBody(tmp_path)


def test_render_benchmark_suite_reports_every_frame():
    results = run_suite(SuiteConfig(frames=4, repeats=1, panel_size=64, dpi=40))
    for suffix in ("mp4", "gif"):
        assert results[suffix]["frames_in_file"] == 4
        assert results[suffix]["frame_size"] == [64, 64]
        assert results[suffix]["seconds_median"] > 0
    assert results["joints"] == 20

"""run/render_motion.py end to end, in a subprocess: stick grids, comparisons, SMPL meshes, refusals."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from render_files import kinect_clip, smpl_rest_joints, write_fake_smpl_model

from mdm.data.archive import write_archive
from mdm.data.dataset import MotionDataset
from mdm.skeleton import load_skeleton

SCRIPT = Path(__file__).resolve().parents[1] / "run" / "render_motion.py"
SMALL = ["--panel-size", "64", "--dpi", "40"]


def _render(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def _archive(path: Path, lengths: list[int], fps: float | None = None) -> Path:
    dataset = MotionDataset(clips=[kinect_clip(n) for n in lengths], labels=np.arange(len(lengths)) % 2,
                            class_names=["wave", "walk"], skeleton=load_skeleton("kinect_v1"), fps=fps,
                            source="test")
    return write_archive(dataset, path)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return _archive(tmp_path / "real.npz", [4, 2, 6], fps=15.0)


def test_grid_of_archive_clips_as_gif_at_the_archive_frame_rate(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "videos" / "grid.gif"
    result = _render(archive, "--index", "0", "--index", "2", "--grid", "2x1", "--out", out, "--title", "two", *SMALL)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout and "15 fps" in result.stdout
    reader = imageio.get_reader(out, format="GIF")
    assert len(reader) == 6  # the longer clip's frames
    assert reader.get_data(0).shape[:2] == (64 + 32, 128)
    assert reader.get_meta_data()["duration"] == pytest.approx(1000 / 15, abs=10)


def test_a_png_output_is_one_still_frame(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "still.png"
    result = _render(archive, "--index", "0", "--index", "1", "--grid", "2x1", "--frame", "2", "--out", out, *SMALL)
    assert result.returncode == 0, result.stderr
    assert imageio.imread(out).shape[:2] == (64, 128)
    late = _render(archive, "--index", "0", "--frame", "99", "--out", tmp_path / "late.png", *SMALL)
    assert late.returncode == 2 and "--frame 99: the clips have frames 0 to" in late.stderr


def test_compare_puts_clips_of_two_files_side_by_side(archive: Path, tmp_path: Path) -> None:
    generated = _archive(tmp_path / "generated.npz", [3, 5])
    out = tmp_path / "compare.mp4"
    result = _render("--compare", f"{archive}:0", f"{generated}:1", "--out", out, "--fps", "10", *SMALL)
    assert result.returncode == 0, result.stderr
    reader = imageio.get_reader(out, format="FFMPEG")
    assert reader.count_frames() == 5 and reader.get_meta_data()["fps"] == 10
    assert reader.get_data(0).shape[:2] == (64, 128)


def test_smpl_meshes_of_rotation_data_with_a_fake_model(tmp_path: Path) -> None:
    write_fake_smpl_model(tmp_path / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl")
    rest = smpl_rest_joints().astype(np.float32)
    poses = np.zeros((3, 72), dtype=np.float32)
    poses[:, 0] = np.linspace(0.0, 1.0, 3)  # the body tips over about x
    data = {"poses": [poses], "joints3D": [np.repeat(rest[None], 3, 0)], "y": [1]}
    (tmp_path / "humanact12poses.pkl").write_bytes(pickle.dumps(data))
    out = tmp_path / "mesh.mp4"
    result = _render(tmp_path / "humanact12poses.pkl", "--format", "humanact12poses", "--index", "0",
                     "--smpl-dir", tmp_path / "body_models", "--mesh-out", tmp_path / "meshes", "--out", out, *SMALL)
    assert result.returncode == 0, result.stderr
    assert imageio.get_reader(out, format="FFMPEG").count_frames() == 3
    assert sorted(p.name for p in (tmp_path / "meshes").rglob("*.ply")) == [f"frame_000{i}.ply" for i in range(3)]


@pytest.mark.parametrize(
    ("make_args", "words"),
    [
        (lambda archive, tmp: [archive, "--index", "3", "--out", tmp / "a.mp4"],
         "clip index 3 out of range; the file has 3 clips"),
        (lambda archive, tmp: [tmp / "missing.npz", "--index", "0", "--out", tmp / "new" / "a.mp4"], "no such file"),
        (lambda archive, tmp: [archive, "--index", "0", "--skeleton", "kinect_v9", "--out", tmp / "a.mp4"],
         "unknown skeleton 'kinect_v9'"),
        (lambda archive, tmp: [archive, "--index", "0", "--out", tmp / "a.avi"], "unsupported video extension '.avi'"),
        (lambda archive, tmp: [archive, "--index", "0", "--out", archive / "a.mp4"], "cannot create the output folder"),
        (lambda archive, tmp: [archive, "--index", "0", "--smpl-dir", tmp, "--out", tmp / "a.mp4"],
         "holds joint positions only"),
    ],
)
def test_refusals_end_with_one_line_and_exit_2(archive: Path, tmp_path: Path, make_args, words: str) -> None:
    result = _render(*make_args(archive, tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], result.stderr
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*tmp*"))
    assert not (tmp_path / "new").exists()  # a refused input leaves no output folder behind

"""run/convert_dataset.py end to end, in a subprocess, on a tiny NW-UCLA-format folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from format_files import write_nw_ucla_clip

from mdm.data.archive import read_archive

SCRIPT = Path(__file__).resolve().parents[1] / "run" / "convert_dataset.py"


def _convert(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    folder = tmp_path / "all_sqe"
    write_nw_ucla_clip(folder, action=1, subject=1, episode=0, view=1, frames=4, seed=1)
    write_nw_ucla_clip(folder, action=5, subject=2, episode=1, view=3, frames=3, seed=2)
    write_nw_ucla_clip(folder, action=9, subject=3, episode=0, view=2, frames=1, seed=3)
    return folder


def test_convert_writes_an_archive_and_reports_the_dropped_clip(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "nw_ucla.npz"
    result = _convert("--format", "nw-ucla", "--input", clips, "--output", out)
    assert result.returncode == 0, result.stderr
    assert "2 clips, 10 classes" in result.stdout and str(out) in result.stdout
    assert "dropped 1 clip(s)" in result.stderr and "a09_s03_e00_v02" in result.stderr
    dataset = read_archive(out)
    assert dataset.clip_ids == ["a01_s01_e00_v01", "a05_s02_e01_v03"]
    assert dataset.split.tolist() == ["train", "test"] and dataset.labels.tolist() == [0, 4]
    np.testing.assert_array_equal(dataset.clips[1], write_nw_ucla_clip(tmp_path / "copy", 5, 2, 1, 3, 3, seed=2))


def test_convert_passes_min_frames_and_reader_options(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.npz"
    result = _convert("--format", "nw-ucla", "--input", clips, "--output", out, "--min-frames", "1",
                      "--option", "train_views=[3]")
    assert result.returncode == 0, result.stderr
    assert read_archive(out).split.tolist() == ["test", "train", "test"]


def test_convert_makes_a_view_fold(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "fold.npz"
    result = _convert("--format", "nw-ucla", "--input", clips, "--output", out, "--min-frames", "1",
                      "--view-fold", "2:1")
    assert result.returncode == 0, result.stderr
    fold = read_archive(out)
    assert fold.clip_ids == ["a01_s01_e00_v01", "a09_s03_e00_v02"] and fold.split.tolist() == ["test", "train"]


@pytest.mark.parametrize(
    ("make_args", "words"),
    [
        (lambda folder, out: ["--format", "nw-ucla", "--input", folder / "absent", "--output", out], "no such folder"),
        (lambda folder, out: ["--format", "nw-ucla", "--input", folder, "--output", out, "--option", "protocol=xsub"],
         "does not take option"),
        (lambda folder, out: ["--format", "nw-ucla", "--input", folder, "--output", out, "--min-frames", "0"],
         "min_frames"),
        (lambda folder, out: ["--format", "nw-ucla", "--input", folder, "--output", out.with_suffix(".zip")], ".npz"),
        (lambda folder, out: ["--format", "nw-ucla", "--input", folder, "--output", out, "--view-fold", "1-2"],
         "TRAIN:TEST"),
    ],
    ids=["missing-folder", "unknown-option", "bad-min-frames", "bad-output-name", "bad-view-fold"],
)
def test_bad_input_exits_2_with_one_line_and_leaves_the_output_alone(clips: Path, tmp_path: Path, make_args,
                                                                     words: str) -> None:
    out = tmp_path / "existing.npz"
    out.write_bytes(b"previous contents")
    result = _convert(*make_args(clips, out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert "Traceback" not in result.stderr
    assert out.read_bytes() == b"previous contents"


def test_a_bad_clip_file_is_named_in_the_one_line_error(clips: Path, tmp_path: Path) -> None:
    (clips / "a02_s01_e00_v01.json").write_text("{broken")
    result = _convert("--format", "nw-ucla", "--input", clips, "--output", tmp_path / "out.npz")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "a02_s01_e00_v01.json: not valid JSON" in result.stderr
    assert not (tmp_path / "out.npz").exists()

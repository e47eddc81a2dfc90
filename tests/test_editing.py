"""Motion editing: kept frames and joints come out exactly, long sequences join their windows seamlessly,
and the command refuses bad requests with one message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from guided_toy_run import toy_run

from mdm.data.archive import read_archive
from mdm.editing import edit, generate_long, inbetween_mask, joints_mask, prefix_mask, prepare_input
from mdm.errors import ConfigError
from mdm.generator import MotionGenerator, SamplingConfig

REPO = Path(__file__).resolve().parents[1]
SAMPLING = SamplingConfig(steps=10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[MotionGenerator, Path]:
    run = toy_run(tmp_path_factory)
    return MotionGenerator.load(run / "generator"), run


def test_masks_keep_what_they_say() -> None:
    assert inbetween_mask(10, 3, 2)[:, 0].tolist() == [True] * 2 + [False] * 6 + [True] * 2
    assert prefix_mask(10, 3, 4)[:, 2].tolist() == [True] * 4 + [False] * 6
    with pytest.raises(ConfigError, match="in-betweening keeps 1 to 4 frames"):
        inbetween_mask(10, 3, 5)
    with pytest.raises(ConfigError, match="a prefix keeps 1 to 9"):
        prefix_mask(10, 3, 10)


@pytest.mark.parametrize("mode", ["inbetween", "prefix", "joints"])
def test_kept_frames_and_joints_equal_the_input(trained: tuple[MotionGenerator, Path], mode: str) -> None:
    generator, run = trained
    spec = generator.spec
    clips = read_archive(run.parent / "toy.npz")
    motion = torch.as_tensor(np.stack([prepare_input(generator, clips.clips[i]) for i in (0, 5)]))
    legs = [name for name in spec.joint_names if "hip_" in name or "knee" in name or "ankle" in name or "foot" in name]
    mask = {"inbetween": inbetween_mask(spec.num_frames, len(spec.parents), 3),
            "prefix": prefix_mask(spec.num_frames, len(spec.parents), 5),
            "joints": joints_mask(spec.num_frames, generator.skeleton, legs)}[mode]
    edited = edit(generator, motion, mask, torch.tensor([0, 1]), SAMPLING, rng=torch.Generator().manual_seed(0))
    kept = mask[None].expand(2, -1, -1)
    torch.testing.assert_close(edited[kept], motion[kept], atol=1e-5, rtol=0)
    assert (edited[~kept] - motion[~kept]).abs().max() > 1e-3  # the rest is generated, not copied


def test_long_sequences_keep_each_overlap_and_join_smoothly(trained: tuple[MotionGenerator, Path]) -> None:
    generator, _ = trained
    frames, overlap = generator.spec.num_frames, 4
    sequence = generate_long(generator, [0, 1, 2], overlap, SAMPLING, rng=torch.Generator().manual_seed(1))
    assert sequence.shape == (3 * (frames - overlap) + overlap, len(generator.spec.parents), 3)
    speed = (sequence[1:] - sequence[:-1]).norm(dim=-1).mean(-1)
    seams = [frames - 1, 2 * frames - overlap - 1]  # the first generated frame after each kept overlap
    inside = torch.cat([speed[: frames - 1], speed[frames: 2 * frames - overlap - 1]])
    for seam in seams:
        assert speed[seam] <= 3 * inside.max()


def test_the_command_edits_and_refuses_bad_requests(trained: tuple[MotionGenerator, Path], tmp_path: Path) -> None:
    _, run = trained
    command = [sys.executable, str(REPO / "run/mdm_edit.py"), "--checkpoint", str(run), "--steps", "5"]
    archive = str(run.parent / "toy.npz")
    done = subprocess.run(command + ["--input", archive, "--index", "1", "--prefix", "4", "--num", "2",
                                     "--out", str(tmp_path / "edited.npz")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    edited, source = read_archive(tmp_path / "edited.npz"), read_archive(archive)
    assert len(edited) == 3 and edited.clip_ids[-1] == f"input_{source.clip_ids[1]}"  # two edits, then the input
    assert edited.class_names[edited.labels[0]] == source.class_names[source.labels[1]]
    np.testing.assert_allclose(edited.clips[0][:4], edited.clips[-1][:4], atol=1e-5)
    long = subprocess.run(command + ["--long", "class_0,class_1", "--overlap", "4", "--out", str(tmp_path / "long.npz")],
                          capture_output=True, text=True, timeout=300)
    assert long.returncode == 0, long.stderr
    assert read_archive(tmp_path / "long.npz").clips[0].shape[0] == 2 * 16 - 4
    for args, words in [(["--input", archive, "--index", "99", "--prefix", "4"], "--index 99"),
                        (["--input", archive, "--index", "0"], "and one of --inbetween, --prefix, --keep-joints"),
                        (["--input", archive, "--index", "0", "--keep-joints", "tail"], "unknown joint(s) ['tail']"),
                        (["--long", "class_0,dance"], "unknown class name(s) ['dance']")]:
        bad = subprocess.run(command + args + ["--out", str(tmp_path / "bad.npz")], capture_output=True, text=True,
                             timeout=300)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and words in lines[0], bad.stderr
    assert not (tmp_path / "bad.npz").exists()

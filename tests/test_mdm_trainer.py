"""The diffusion trainer: exact resume, a falling loss, the run folder's outputs, sampling."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mdm.commands import mdm_sample
from mdm.config import merge
from mdm.data.archive import read_archive, write_archive
from mdm.errors import ConfigError, UserError
from mdm.generator import MotionGenerator, SamplingConfig
from mdm.training.logs import read_csv
from mdm.training.mdm_trainer import MDMTrainConfig, MDMTrainer
from toy_data import toy_archive, toy_dataset


def _config(archive: Path, max_steps: int) -> MDMTrainConfig:
    return merge(MDMTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)},
        "pipeline": {"num_frames": 16, "rotation_deg": 10.0},
        "preset": "tiny", "batch_size": 8, "max_steps": max_steps, "log_every": 2, "val_every": 4,
        "checkpoint_every": 100, "optim": {"lr": 1e-3, "warmup_steps": 2},
        "loss": {"velocity": 1.0, "bone_length": 0.1, "foot_contact": 0.1},
    })


def test_straight_run_equals_half_run_plus_resume(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz")
    config = _config(archive, max_steps=8)
    MDMTrainer(config, tmp_path / "straight", progress=False).fit()

    MDMTrainer(config, tmp_path / "halves", progress=False).fit(stop_at_step=4)
    torch.manual_seed(999)  # a fresh process would start from other RNG states
    resumed = MDMTrainer(config, tmp_path / "halves", progress=False)
    resumed.resume()
    assert resumed.state.step == 4
    resumed.fit()

    def weights(run: str) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return load_file(str(tmp_path / run / "checkpoints" / "step_00000008" / "model_denoiser.safetensors"))

    straight, halves = weights("straight"), weights("halves")
    assert straight.keys() == halves.keys()
    for name in straight:
        assert torch.equal(straight[name], halves[name]), name
    steps = [int(row["step"]) for row in read_csv(tmp_path / "halves" / "log.csv") if row.get("train_loss")]
    assert steps == [2, 4, 6, 8]


def test_training_lowers_the_loss_and_writes_a_usable_generator(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz")
    run = MDMTrainer(_config(archive, max_steps=40), tmp_path / "run", progress=False).fit()
    losses = [float(r["train_loss"]) for r in read_csv(run / "log.csv") if r.get("train_loss")]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    for name in ("config.yaml", "loss_curves.png", "generator/generator.yaml", "checkpoints/latest"):
        assert (run / name).exists(), name
    generator = MotionGenerator.load(run)
    motion = generator.generate(torch.tensor([0, 1, 2]), SamplingConfig(steps=5, guidance_scale=2.0),
                                generator=torch.Generator().manual_seed(0))
    assert motion.shape == (3, 16, 20, 3) and torch.isfinite(motion).all()


def test_style_conditioning_trains_samples_every_class_and_style_and_needs_styles(tmp_path: Path) -> None:
    dataset = toy_dataset()
    styled = replace(dataset, styles=dataset.subjects % 2, style_names=["calm", "brisk"])
    archive = write_archive(styled, tmp_path / "styled.npz")
    config = merge(_config(archive, max_steps=4), {"condition_on_style": True})
    run = MDMTrainer(config, tmp_path / "run", progress=False).fit()
    generator = MotionGenerator.load(run)
    assert generator.spec.style_names == ["calm", "brisk"] and generator.denoiser.config.num_styles == 2
    out = tmp_path / "samples.npz"
    assert mdm_sample.main(["--checkpoint", str(run), "--classes", "class_0,class_2", "--styles", "all",
                            "--num-per-class", "2", "--steps", "3", "--guidance-scale", "2",
                            "--style-guidance-scale", "2", "--out", str(out), "--sheet", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    samples = read_archive(out)
    assert samples.labels.tolist() == [0, 0, 0, 0, 2, 2, 2, 2] and samples.styles.tolist() == [0, 0, 1, 1] * 2
    assert samples.style_names == ["calm", "brisk"]
    with pytest.raises(UserError, match="unknown style"):
        generator.style_indices(["sleepy"])
    with pytest.raises(ConfigError, match="condition_on_style needs data with a style"):
        MDMTrainer(merge(_config(toy_archive(tmp_path / "plain.npz"), max_steps=4), {"condition_on_style": True}),
                   tmp_path / "plain", progress=False)

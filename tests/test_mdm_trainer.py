"""The diffusion trainer: exact resume, a falling loss, the run folder's outputs, sampling."""

from pathlib import Path

import numpy as np
import torch

from mdm.config import merge
from mdm.generator import MotionGenerator, SamplingConfig
from mdm.training.logs import read_csv
from mdm.training.mdm_trainer import MDMTrainConfig, MDMTrainer
from toy_data import toy_archive


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

"""Co-training: the recognizer learns, outputs are written, resume is exact, bad input is refused."""

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from imdm.augment import InputDropConfig
from imdm.bundle import TrainedRecognizer
from imdm.models.recognizer import Recognizer, recognizer_preset
from imdm.training.cotrain import CoTrainConfig, CoTrainer
from mdm.config import load_yaml, merge, save_yaml
from mdm.data.archive import read_archive, write_archive
from mdm.errors import ConfigError, UserError
from mdm.training.checkpoint import latest_checkpoint
from toy_data import toy_archive, toy_dataset

REPO = Path(__file__).resolve().parents[1]


def _config(archive: Path, epochs: int, **overrides: object) -> CoTrainConfig:
    return merge(CoTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)},
        "pipeline": {"num_frames": 16},
        "recognizer": {"preset": "tiny", "label_smoothing": 0.0, "optim": {"lr": 1e-2, "warmup_steps": 2}},
        "generator": {"preset": "tiny", "optim": {"lr": 1e-3, "warmup_steps": 2}},
        "batch_size": 8, "epochs": epochs, "log_every": 2, "render_samples": False, **overrides,
    })


def test_cotraining_learns_and_writes_every_report(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=16)
    run = CoTrainer(_config(archive, epochs=12), tmp_path / "run", progress=False).fit()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["top1"] > 0.5  # three classes: chance is 1/3
    assert metrics["test"]["num_clips"] == 12 and metrics["best_epoch"] >= 1
    for name in ("config.yaml", "curves.png", "confusion_matrix.png", "per_class_accuracy.csv", "summary.txt",
                 "recognizer/recognizer.yaml", "generator/generator.yaml", "checkpoints/latest"):
        assert (run / name).exists(), name
    recognizer = TrainedRecognizer.load(run)
    test = read_archive(archive).split_subset("test")
    probabilities = recognizer.predict(test)
    assert probabilities.shape == (12, 3) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert np.isclose(np.mean(probabilities.argmax(1) == test.labels), metrics["test"]["top1"])
    card = (run / "recognizer" / "README.md").read_text()
    assert f"{metrics['test']['top1']:.2%}" in card and "run/recognize.py" in card and "class_0" in card
    assert "best validation diffusion loss" in (run / "generator" / "README.md").read_text()


def test_half_run_plus_resume_equals_straight_run(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=16)
    config = _config(archive, epochs=2)  # 33 training clips: 4 steps an epoch
    CoTrainer(config, tmp_path / "straight", progress=False).fit()
    CoTrainer(config, tmp_path / "halves", progress=False).fit(stop_at_step=5)
    torch.manual_seed(321)
    resumed = CoTrainer(config, tmp_path / "halves", progress=False)
    resumed.resume()
    assert resumed.state.step == 5
    resumed.fit()
    for name in ("model_recognizer", "model_denoiser", "ema_recognizer"):
        straight = load_file(str(tmp_path / "straight/checkpoints/step_00000008" / f"{name}.safetensors"))
        halves = load_file(str(tmp_path / "halves/checkpoints/step_00000008" / f"{name}.safetensors"))
        assert all(torch.equal(straight[k], halves[k]) for k in straight), name


def test_detached_features_keep_generator_gradients_out_of_the_recognizer(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=8)
    grads = {}
    for detach, weight in ((False, 1.0), (True, 1.0), (False, 0.0)):
        config = _config(archive, epochs=1, recognizer={"preset": "tiny", "triplet_weight": 0.0},
                         generator={"preset": "tiny", "detach_features": detach, "weight": weight})
        trainer = CoTrainer(config, tmp_path / f"run{detach}{weight}", progress=False)
        torch.manual_seed(5)
        with torch.no_grad():  # trained adapters: untrained ones are zero and pass no gradient
            for parameter in trainer.denoiser.model.adapters.parameters():
                parameter.normal_(0, 0.1)
        trainer.sampler.set_epoch(0)
        batch = next(iter(trainer.train_loader))
        torch.manual_seed(0)
        trainer.train_step(batch)
        grads[detach, weight] = torch.cat([p.grad.flatten() for p in trainer.recognizer.model.parameters()
                                           if p.grad is not None])
    assert torch.allclose(grads[True, 1.0], grads[False, 0.0])
    assert not torch.allclose(grads[False, 1.0], grads[False, 0.0])


def test_the_final_ema_recognizer_is_kept_after_the_whole_schedule(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=8)
    config = _config(archive, epochs=4, generator={"enabled": False})
    run = CoTrainer(config, tmp_path / "run", progress=False).fit()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 4
    assert metrics["recognizer_kept"] == "EMA recognizer at the end of the schedule"
    kept = load_file(str(run / "recognizer/recognizer.safetensors"))
    final = load_file(str(latest_checkpoint(run / "checkpoints") / "ema_recognizer.safetensors"))
    assert kept.keys() == final.keys() and all(torch.equal(kept[k], final[k]) for k in kept)


def test_train_on_validation_trains_on_both_splits(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=8)
    config = _config(archive, epochs=1, generator={"enabled": False})
    plain = CoTrainer(config, tmp_path / "plain", progress=False)
    refit = CoTrainer(replace(config, train_on_validation=True), tmp_path / "refit", progress=False)
    assert len(plain.val_set) > 0 and refit.val_set.clip_ids == plain.val_set.clip_ids
    assert sorted(refit.train_set.clip_ids) == sorted(plain.train_set.clip_ids + plain.val_set.clip_ids)
    assert not set(refit.train_set.clip_ids) & set(refit.test_set.clip_ids)
    run = refit.fit()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_on_validation"] is True and metrics["steps"] == len(refit.sampler)
    assert "validation clips trained on" in (run / "summary.txt").read_text()


@pytest.mark.parametrize("recipe", sorted((REPO / "assets/configs/recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_recipes_load_over_the_cpu_preset_and_build_their_recognizer(recipe: Path) -> None:
    cpu_preset = merge(CoTrainConfig(), load_yaml(REPO / "assets/configs/cotrain/cpu.yaml"))
    config = merge(cpu_preset, load_yaml(recipe), str(recipe))
    model = Recognizer(recognizer_preset(config.recognizer.preset, **config.recognizer.overrides))
    logits = model(torch.randn(2, config.pipeline.num_frames, model.config.num_joints, 3)).logits
    assert logits.shape == (2, model.config.num_classes)
    if recipe.stem == "nw_ucla_cross_view":  # the recipe docs/results.md measures
        assert config.view_pairs and model.config == recognizer_preset("default")
        assert config.pipeline == cpu_preset.pipeline
        assert config.epochs == 140 and config.recognizer.input_drop == InputDropConfig(axis_prob=0.5, joint_prob=0.5)


def test_a_video_that_cannot_be_written_is_refused_before_training(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=16)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if the package were not installed
    with pytest.raises(UserError, match="imageio-ffmpeg"):
        CoTrainer(_config(archive, epochs=1, render_samples=True), tmp_path / "run", progress=False)
    CoTrainer(_config(archive, epochs=1), tmp_path / "run", progress=False)  # no video asked for: no refusal


def test_view_pairs_keep_the_views_of_a_performance_in_one_batch(tmp_path: Path) -> None:
    dataset = toy_dataset(clips_per_class=16)
    # Clip i of a class shows subject i % 4 (see toy_dataset); clips i and i + 4 (i % 8 < 4): one performance.
    dataset = replace(dataset, clip_ids=[f"a{label}_s{i % 4}_e{i % 16 // 8}_v0{i % 8 // 4 + 1}"
                                         for i, label in enumerate(dataset.labels)])
    archive = write_archive(dataset, tmp_path / "views.npz")
    trainer = CoTrainer(_config(archive, epochs=2, view_pairs=True, generator={"enabled": False}),
                        tmp_path / "run", progress=False)
    performances = [clip_id[:-4] for clip_id in trainer.train_set.clip_ids]
    assert sorted(Counter(performances).values()) == [2] * (len(performances) // 2)
    trainer.sampler.set_epoch(0)
    for batch in trainer.sampler:
        assert len(batch) == 8
        assert all(performances[a] == performances[b] for a, b in zip(batch[0::2], batch[1::2]))
    run = trainer.fit()
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2
    with pytest.raises(ConfigError, match="no two training clips show one performance"):
        CoTrainer(_config(toy_archive(tmp_path / "toy.npz"), epochs=1, view_pairs=True), tmp_path / "run2",
                  progress=False)
    with pytest.raises(ConfigError, match="view_pairs and balanced"):
        CoTrainConfig(view_pairs=True, balanced=True)


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "kinetics"], "invalid choice"),
    (["--dataset", "nw-ucla", "--data-root", "/no/such/folder"], "not found"),
    (["--config", "/no/such.yaml"], "config file not found"),
    (["--set", "epochz=3"], "unknown key"),
])
def test_bad_input_ends_with_one_message(args: list[str], message: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, str(REPO / "run/mdm_imdm_cotrain.py"), *args, "--output-dir", str(run)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not run.exists()  # a refused run leaves no empty run folder behind


@pytest.mark.slow
def test_two_processes_train_one_run_with_the_single_process_schedule(tmp_path: Path) -> None:
    """``torchrun`` (as ``accelerate launch`` starts it) with two CPU processes: one run folder, one report."""
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=16)
    config = _config(archive, epochs=2)
    save_yaml(config, tmp_path / "config.yaml")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(REPO / "run/mdm_imdm_cotrain.py"), "--preset", "tiny", "--config", str(tmp_path / "config.yaml"),
         "--output-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("run folder:") == 1 and result.stdout.count("TEST top-1") == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    single_process = CoTrainer(config, tmp_path / "single", progress=False)
    assert metrics["steps"] == single_process.total_steps == 8  # the batch is global, not per process
    assert metrics["test"]["num_clips"] == 12  # every test clip counted once across the two processes

"""Mixed real + synthetic data: composition, weights in the loss, budget, the retraining CLI."""

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from guided_gen.mixed import SYNTHETIC_PREFIX, MixConfig, budgeted, mix_datasets
from guided_toy_run import one_torch_thread, toy_run_config  # noqa: F401 (autouse fixture)
from imdm.training.cotrain import CoTrainer
from mdm.cli import run_main
from mdm.config import save_yaml
from mdm.data.archive import write_archive
from mdm.data.dataset import MotionDataset
from mdm.data.splits import carve_validation_split
from mdm.errors import ConfigError, UserError
from mdm.training.loop import steps_per_epoch
from toy_data import toy_archive, toy_dataset

REPO = Path(__file__).resolve().parents[1]


def _real() -> MotionDataset:
    return carve_validation_split(toy_dataset(clips_per_class=12), 0.2, seed=0)


def _synthetic(count_per_class: int = 10, seed: int = 5) -> MotionDataset:
    data = toy_dataset(clips_per_class=count_per_class, seed=seed)
    return replace(data, clip_ids=[f"gen_{i:06d}" for i in range(len(data))], split=None, subjects=None,
                   source="synthetic:test")


def test_mixed_dataset_composition_ratio_weights_and_real_only_evaluation() -> None:
    real, synthetic = _real(), _synthetic()
    real_train = int(np.sum(real.split == "train"))
    mixed = mix_datasets(real, synthetic, MixConfig(ratio=0.5, synthetic_weight=0.3), seed=1)
    counts = mixed.counts()
    assert counts["train_real"] == real_train and counts["train_synthetic"] == round(0.5 * real_train)
    assert counts["val"] == int(np.sum(real.split == "val")) and counts["test"] == int(np.sum(real.split == "test"))
    data = mixed.dataset
    synthetic_ids = [c for c in data.clip_ids if c.startswith(SYNTHETIC_PREFIX)]
    assert len(synthetic_ids) == counts["train_synthetic"] == int(mixed.is_synthetic.sum())
    assert set(data.split[mixed.is_synthetic]) == {"train"}
    for split in ("val", "test"):
        held_out = data.split_subset(split)
        assert not any(c.startswith(SYNTHETIC_PREFIX) for c in held_out.clip_ids)
    assert np.all(mixed.weights[mixed.is_synthetic] == np.float32(0.3))
    assert np.all(mixed.weights[~mixed.is_synthetic] == 1)
    # the real clips come first, unchanged
    assert data.clip_ids[:len(real)] == real.clip_ids and np.array_equal(data.split[:len(real)], real.split)
    # the synthetic clips are a seeded subsample with their own labels
    picked = [synthetic.clip_ids.index(c[len(SYNTHETIC_PREFIX):]) for c in synthetic_ids]
    assert np.array_equal(data.labels[mixed.is_synthetic], synthetic.labels[picked])
    again = mix_datasets(real, synthetic, MixConfig(ratio=0.5), seed=1).dataset.clip_ids
    other = mix_datasets(real, synthetic, MixConfig(ratio=0.5), seed=2).dataset.clip_ids
    assert again == data.clip_ids and other != data.clip_ids
    assert mix_datasets(real, synthetic, MixConfig(ratio=None), 0).counts()["train_synthetic"] == len(synthetic)
    assert mix_datasets(real, synthetic, MixConfig(ratio=0.0), 0).counts()["train_synthetic"] == 0
    assert mix_datasets(real, synthetic, MixConfig(ratio=100.0), 0).counts()["train_synthetic"] == len(synthetic)


def test_synthetic_data_of_other_classes_or_skeleton_is_refused() -> None:
    real = _real()
    with pytest.raises(UserError, match="syn.npz: classes"):
        mix_datasets(real, replace(_synthetic(), class_names=["a", "b", "c"]), MixConfig(), 0, "syn.npz")
    with pytest.raises(ConfigError, match="synthetic-weight"):
        MixConfig(synthetic_weight=0.0)
    with pytest.raises(ConfigError, match="ratio"):
        MixConfig(ratio=-1.0)


def test_budget_keeps_the_real_only_number_of_steps(tmp_path: Path) -> None:
    config = toy_run_config(tmp_path / "toy.npz", epochs=30)
    mixed = mix_datasets(_real(), _synthetic(), MixConfig(ratio=1.0), 0)
    counts = mixed.counts()
    same_steps = budgeted(config, mixed, "real_epochs")
    real_steps = config.epochs * steps_per_epoch(counts["train_real"], config.batch_size)
    mixed_per_epoch = steps_per_epoch(counts["train_real"] + counts["train_synthetic"], config.batch_size)
    assert abs(same_steps.epochs * mixed_per_epoch - real_steps) <= mixed_per_epoch / 2
    assert same_steps.epochs < config.epochs
    assert budgeted(config, mixed, "epochs") == config
    assert budgeted(config, mix_datasets(_real(), _synthetic(), MixConfig(ratio=0.0), 0), "real_epochs") == config


def test_synthetic_weight_scales_the_cross_entropy(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=12)
    config = toy_run_config(archive, epochs=1)
    config = replace(config, generator=replace(config.generator, enabled=False))
    mixed = mix_datasets(_real(), _synthetic(), MixConfig(ratio=1.0, synthetic_weight=0.25), 0)
    trainer = CoTrainer(config, tmp_path / "run", progress=False, dataset=mixed.dataset, sample_weights=mixed.weights)
    trainer.sampler.set_epoch(0)
    batch = next(iter(trainer.train_loader))
    synthetic = torch.as_tensor(mixed.is_synthetic[mixed.dataset.split == "train"])[batch["index"]]
    assert 0 < int(synthetic.sum()) < len(synthetic)  # a batch with both kinds
    trainer.recognizer.model.train()
    device = trainer.accelerator.device  # a GPU where there is one
    with torch.no_grad():
        logits = trainer.recognizer.model(batch["motion"].to(device)).logits
        per_clip = F.cross_entropy(logits, batch["label"].to(device), reduction="none").cpu()
    weights = torch.where(synthetic, 0.25, 1.0)
    terms = trainer.train_step(batch)
    assert terms["ce"] == pytest.approx(float((weights * per_clip).sum() / weights.sum()), rel=1e-5)
    assert terms["ce"] != pytest.approx(float(per_clip.mean()), rel=1e-3)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    spec = importlib.util.spec_from_file_location("mix_cli", REPO / "run/mdm_imdm_cotrain_with_mix_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        run_main(module.main, argv)
    return int(exit_info.value.code), capsys.readouterr().err


@pytest.fixture
def run_and_synthetic(tmp_path: Path) -> tuple[Path, Path]:
    """A run folder holding only the config.yaml the mixed training reads, and a synthetic archive."""
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=12)
    run = tmp_path / "cotrain"
    run.mkdir()
    save_yaml(toy_run_config(archive, epochs=2), run / "config.yaml")
    write_archive(_synthetic(4).subset([]), tmp_path / "empty.npz")
    return run, write_archive(_synthetic(4), tmp_path / "syn.npz")


def test_cli_trains_on_the_mix_and_tests_on_real_clips(run_and_synthetic: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    run, synthetic = run_and_synthetic
    out = tmp_path / "mixed"
    code, err = _cli(["--run", str(run), "--synthetic", str(synthetic), "--ratio", "all", "--synthetic-weight", "0.5",
                      "--output-dir", str(out), "--seed", "3"], capsys)
    assert code == 0, err
    record = yaml.safe_load((out / "mix.yaml").read_text())
    assert record["mix"] == {"synthetic_weight": 0.5, "ratio": None, "budget": "real_epochs"}
    assert record["counts"]["train_synthetic"] == 12
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["num_clips"] == record["counts"]["test"] == 9 and metrics["seed"] == 3
    assert (out / "recognizer/recognizer.yaml").is_file() and not (out / "generator").exists()
    assert yaml.safe_load((out / "config.yaml").read_text())["generator"]["enabled"] is False


@pytest.mark.parametrize(("args", "message"), [
    (["--synthetic", "{missing}"], "no such file"),
    (["--synthetic", "{empty}"], "holds no clips"),
    (["--synthetic", "{syn}", "--synthetic-weight", "-1"], "--synthetic-weight must be positive"),
    (["--synthetic", "{syn}", "--set", "epochz=2"], "unknown key"),
    ([], "give --run DIR and --synthetic FILE.npz"),
])
def test_cli_refuses_bad_input_with_one_line(args: list[str], message: str, run_and_synthetic: tuple[Path, Path],
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, synthetic = run_and_synthetic
    argv = ["--run", str(run)] + [a.format(missing=tmp_path / "none.npz", syn=synthetic, empty=tmp_path / "empty.npz") for a in args]
    code, err = _cli(argv, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err

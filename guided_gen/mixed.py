"""Real plus synthetic training data: the mixed dataset the recognizer is retrained on.

A mixed dataset reads two archives' worth of clips: the real data with its train/val/test
split, and synthetic clips that all join the training split (a seeded subsample of ``ratio``
synthetic clips per real training clip). Validation and test stay real only. Each clip carries
a loss weight: 1 for real clips, ``synthetic_weight`` for synthetic ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from imdm.training.cotrain import CoTrainConfig, CoTrainer
from mdm.config import from_dict, load_yaml, to_dict
from mdm.data.archive import read_archive
from mdm.data.dataset import MotionDataset
from mdm.data.sources import DataConfig, load_training_data
from mdm.errors import ConfigError, UserError
from mdm.training.loop import steps_per_epoch

logger = logging.getLogger("guided_gen.mixed")
SYNTHETIC_PREFIX = "synthetic/"
"""Prefix of synthetic clip ids inside a mixed dataset."""
BUDGETS = ("real_epochs", "epochs")


@dataclass
class MixConfig:
    """How synthetic clips join the training data.

    Attributes:
        synthetic_weight: loss weight of a synthetic clip (a real clip weighs 1).
        ratio: synthetic clips per real training clip, subsampled with the training seed;
            None = every synthetic clip; 0 = real data only (the baseline, same everything else).
        budget: ``real_epochs``: the configured epochs count passes over the real training clips,
            so a mixed run takes as many optimisation steps as the real-only run (to within half
            a mixed epoch: epochs scaled by whole batches per epoch, real over mixed);
            ``epochs``: passes over the mixed data.
    """

    synthetic_weight: float = 1.0
    ratio: float | None = 1.0
    budget: str = "real_epochs"

    def __post_init__(self) -> None:
        if self.synthetic_weight <= 0:
            raise ConfigError(f"--synthetic-weight must be positive, got {self.synthetic_weight}")
        if self.ratio is not None and self.ratio < 0:
            raise ConfigError(f"--ratio must be >= 0, got {self.ratio}")
        if self.budget not in BUDGETS:
            raise ConfigError(f"mix budget must be one of {list(BUDGETS)}, got {self.budget!r}")


@dataclass
class MixedDataset:
    """Real and synthetic clips as one dataset.

    Attributes:
        dataset: real clips (their own split) followed by synthetic clips (split ``train``).
        is_synthetic: bool ``[N]``.
        weights: float32 ``[N]`` loss weight of each clip.
    """

    dataset: MotionDataset
    is_synthetic: np.ndarray
    weights: np.ndarray

    def counts(self) -> dict[str, int]:
        """Clips per split and origin, e.g. ``{"train_real": .., "train_synthetic": .., "val": .., "test": ..}``."""
        split = self.dataset.split
        train = split == "train"
        return {"train_real": int(np.sum(train & ~self.is_synthetic)),
                "train_synthetic": int(np.sum(train & self.is_synthetic)),
                "val": int(np.sum(split == "val")), "test": int(np.sum(split == "test"))}


def _as_persons(clip: np.ndarray, num_persons: int) -> np.ndarray:
    """A one-person clip ``[T, J, 3]`` as ``[T, M, J, 3]`` (other persons absent), or as it is."""
    if num_persons == 1 or clip.ndim == 4:
        return clip
    out = np.zeros((clip.shape[0], num_persons) + clip.shape[1:], dtype=clip.dtype)
    out[:, 0] = clip
    return out


def mix_datasets(real: MotionDataset, synthetic: MotionDataset, config: MixConfig, seed: int,
                 synthetic_name: str = "the synthetic archive") -> MixedDataset:
    """Join real clips (with a train/val/test split) and synthetic clips (all training).

    Args:
        real: the real data, with its split.
        synthetic: generated clips of the same classes and skeleton.
        config: ratio and weight.
        seed: seeds the subsample of synthetic clips.
        synthetic_name: how errors name the synthetic data (its file).
    """
    if real.split is None:
        raise ValueError("the real dataset needs a train/val/test split")
    if len(synthetic) == 0:
        raise UserError(f"{synthetic_name}: holds no clips, so there is nothing to mix in (were they all filtered out? "
                        "generate again with a lower --min-confidence or --copy-threshold, or more clips per class)")
    if list(synthetic.class_names) != list(real.class_names):
        raise UserError(f"{synthetic_name}: classes {synthetic.class_names} differ from the real data's "
                        f"{real.class_names}")
    if tuple(synthetic.skeleton.parents) != tuple(real.skeleton.parents):
        raise UserError(f"{synthetic_name}: skeleton {synthetic.skeleton.name} "
                        f"({synthetic.skeleton.num_joints} joints) differs from the real data's "
                        f"{real.skeleton.name} ({real.skeleton.num_joints} joints)")
    if synthetic.is_multi_person:
        raise UserError(f"{synthetic_name}: synthetic clips must be one person [T, J, 3]")
    num_real_train = int(np.sum(real.split == "train"))
    wanted = len(synthetic) if config.ratio is None else int(round(config.ratio * num_real_train))
    if wanted > len(synthetic):
        logger.warning("ratio %.3g asks for %d synthetic clips but %s holds %d: using all", config.ratio, wanted,
                       synthetic_name, len(synthetic))
    count = min(wanted, len(synthetic))
    chosen = np.sort(np.random.default_rng(seed).choice(len(synthetic), size=count, replace=False))
    picked = synthetic.subset(chosen)
    persons = real.num_persons
    mixed = MotionDataset(
        clips=list(real.clips) + [_as_persons(clip, persons) for clip in picked.clips],
        labels=np.concatenate([real.labels, picked.labels]),
        class_names=real.class_names,
        skeleton=real.skeleton,
        subjects=np.concatenate([real.subjects, np.full(count, -1)]),
        views=np.concatenate([real.views, np.full(count, -1)]),
        clip_ids=list(real.clip_ids) + [SYNTHETIC_PREFIX + c for c in picked.clip_ids],
        split=np.concatenate([real.split, np.full(count, "train")]),
        fps=real.fps,
        source=f"{real.source} + {count} clips of {synthetic.source}",
    )
    is_synthetic = np.concatenate([np.zeros(len(real), bool), np.ones(count, bool)])
    weights = np.where(is_synthetic, config.synthetic_weight, 1.0).astype(np.float32)
    return MixedDataset(mixed, is_synthetic, weights)


def load_mixed(data: DataConfig, synthetic_path: str | Path, config: MixConfig, seed: int) -> MixedDataset:
    """The real data of ``data`` (split as in co-training) plus the synthetic archive."""
    synthetic = read_archive(synthetic_path)
    return mix_datasets(load_training_data(data), synthetic, config, seed, synthetic_name=str(synthetic_path))


def budgeted(config: CoTrainConfig, mixed: MixedDataset, budget: str) -> CoTrainConfig:
    """The training config with epochs counted as ``budget`` says (see :class:`MixConfig`)."""
    counts = mixed.counts()
    if budget == "epochs" or counts["train_synthetic"] == 0:
        return config
    real_steps = config.epochs * steps_per_epoch(counts["train_real"], config.batch_size)
    mixed_per_epoch = steps_per_epoch(counts["train_real"] + counts["train_synthetic"], config.batch_size)
    epochs = max(1, round(real_steps / mixed_per_epoch))
    return replace(config, epochs=epochs)


@dataclass
class MixRecipe:
    """A recipe file (``assets/configs/mix/*.yaml``): how to mix, and overrides of the training config."""

    mix: MixConfig
    train: dict[str, Any]


def load_recipe(path: str | Path) -> MixRecipe:
    """Read a recipe YAML (unknown keys refused)."""
    values = {"mix": {}, **load_yaml(path)}
    values["train"] = values.get("train") or {}
    return from_dict(MixRecipe, values, str(path))


def train_mixed(config: CoTrainConfig, mix: MixConfig, synthetic_path: str | Path, output_dir: str | Path, *,
                run_dir: str | Path | None = None, resume: bool = False, max_minutes: float | None = None,
                progress: bool = True) -> Path:
    """Train the recognizer (and, if ``config.generator.enabled``, the generator) on real plus synthetic clips.

    Validation and the one test evaluation use real clips only.
    Writes everything co-training writes, plus ``mix.yaml`` (the synthetic archive, the mixing
    settings and the clip counts), which ``resume`` reads back.

    Args:
        config: the training config (its ``data`` names the real data; its ``seed`` also seeds
            the synthetic subsample). With ``resume`` it is the run's saved config, used as it is.
        mix: ratio, weight and budget.
        synthetic_path: the synthetic archive.
        output_dir: the run folder.
        run_dir: the co-training run the synthetic clips came from (recorded only).
    """
    output_dir = Path(output_dir)
    mixed = load_mixed(config.data, synthetic_path, mix, config.seed)
    counts = mixed.counts()
    if not resume:
        config = budgeted(config, mixed, mix.budget)
    logger.info("mixed training data: %d real + %d synthetic training clips (weight %g), %d val and %d test clips "
                "(real only); %d epochs", counts["train_real"], counts["train_synthetic"], mix.synthetic_weight,
                counts["val"], counts["test"], config.epochs)
    trainer = CoTrainer(config, output_dir, progress=progress, dataset=mixed.dataset, sample_weights=mixed.weights)
    if trainer.accelerator.is_main_process and not resume:
        output_dir.mkdir(parents=True, exist_ok=True)
        record = {"synthetic": str(synthetic_path), "run": None if run_dir is None else str(run_dir),
                  "mix": to_dict(mix), "counts": counts}
        (output_dir / "mix.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    if resume:
        trainer.resume()
    return trainer.fit(max_minutes)

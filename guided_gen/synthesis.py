"""Synthesis of a labelled synthetic dataset from a co-trained run, in resumable shards.

The clips to generate (their classes) are planned first: ``per_class`` clips of every class, or
with ``balance`` every class topped up to that many clips counting its real training clips.
The plan is cut into shards of ``batch_size`` clips. Shard ``s`` depends only on the plan, the
settings and ``(seed, s)``, so the result is the same whichever process makes it: process ``p``
of ``P`` makes shards ``s % P == p`` and skips those already on disk (a stopped run continues).
Each shard holds its clips with the recognizer's confidence for the target class and the
distance to the nearest real training clip; merging applies the filters and writes one archive
and a JSON summary. Layout for ``--out syn.npz``::

    syn.npz           the merged, filtered archive (docs/data_format.md), every clip split 'train'
    syn.json          settings and counts (generated, dropped per filter, kept, per class)
    syn.shards/       plan.json and shard_00000.npz ... (kept: re-filtering needs no sampling)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from guided_gen.cotrained import CoTrainedRun
from guided_gen.filtering import FilterConfig, NearCopyIndex, apply_filters
from guided_gen.guidance import ExemplarBank, GuidanceConfig, GuidedSampler
from mdm.config import to_dict
from mdm.data.archive import write_archive
from mdm.data.dataset import MotionDataset
from mdm.errors import ConfigError, DataFormatError, UserError
from mdm.generator import samples_to_dataset

logger = logging.getLogger("guided_gen.synthesis")
SHARD_KEYS = ("joints", "labels", "confidence", "nearest_distance", "nearest_clip", "exemplars")


@dataclass
class SynthesisConfig:
    """What to generate and how to filter it.

    Attributes:
        guidance: scales and sampling settings.
        filters: confidence and near-copy thresholds (applied when merging).
        per_class: clips per class; exclusive with ``balance``.
        balance: top every class up to this many clips counting its real training clips.
        seed: base seed of the noise and of the exemplar draws.
        batch_size: clips per shard (one sampling batch).
    """

    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    per_class: int | None = None
    balance: int | None = None
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if (self.per_class is None) == (self.balance is None):
            raise ConfigError("give exactly one of --per-class N and --balance K")
        if self.per_class is not None and self.per_class < 1:
            raise ConfigError(f"--per-class must be >= 1, got {self.per_class}")
        if self.balance is not None and self.balance < 1:
            raise ConfigError(f"--balance must be >= 1, got {self.balance}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")


def plan_labels(real_counts: np.ndarray, per_class: int | None, balance: int | None) -> np.ndarray:
    """Classes of the clips to generate, class by class.

    Args:
        real_counts: int ``[K]`` real training clips per class.
    Returns:
        int64 ``[N]``: ``per_class`` of every class, or ``max(0, balance - real_counts[k])`` of class ``k``.
    """
    counts = np.full(len(real_counts), per_class) if per_class is not None else np.maximum(0, balance - real_counts)
    return np.repeat(np.arange(len(real_counts)), counts).astype(np.int64)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` atomically (temporary file, then rename)."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Synthesis:
    """One synthesis job: plan, shards in ``<out>.shards/``, merged archive ``<out>``.

    Args:
        run: the co-trained run whose generator samples and whose recognizer guides and filters.
        config: settings.
        out: the archive to write (``.npz``).
    """

    def __init__(self, run: CoTrainedRun, config: SynthesisConfig, out: str | Path) -> None:
        self.out = Path(out)
        if self.out.suffix != ".npz":
            raise UserError(f"--out {self.out}: an archive's name must end in .npz")
        self.run = run
        self.config = config
        self.train_set = run.training_clips()
        real_counts = np.bincount(self.train_set.labels, minlength=len(run.generator.spec.class_names))
        self.labels = plan_labels(real_counts, config.per_class, config.balance)
        size = config.batch_size
        self.shards = [(start, min(start + size, len(self.labels))) for start in range(0, len(self.labels), size)]
        self.shard_dir = self.out.with_name(self.out.stem + ".shards")
        self.summary_path = self.out.with_suffix(".json")

    # ------------------------------------------------------------------ plan
    @property
    def source(self) -> str:
        """The archive's ``source``: the run and every setting that shaped the clips."""
        config = self.config
        amount = f"per_class={config.per_class}" if config.per_class is not None else f"balance={config.balance}"
        return (f"synthetic:mdm-imdm run={self.run.directory.resolve()} {config.guidance.describe()} {amount} "
                f"seed={config.seed} min_confidence={config.filters.min_confidence:g} "
                f"copy_threshold={config.filters.copy_threshold:g}")

    def plan(self) -> dict[str, Any]:
        """Everything the shards depend on (filters excluded: they act when merging)."""
        directory = self.run.directory
        return {
            "generator_weights": _file_digest(directory / "generator" / "denoiser.safetensors"),
            "recognizer_weights": _file_digest(directory / "recognizer" / "recognizer.safetensors"),
            "guidance": to_dict(self.config.guidance),
            "seed": self.config.seed,
            "batch_size": self.config.batch_size,
            "labels": self.labels.tolist(),
        }

    def check_plan(self) -> None:
        """UserError if ``<out>.shards/`` holds shards of other settings."""
        saved = self.shard_dir / "plan.json"
        if saved.is_file() and json.loads(saved.read_text()) != self.plan():
            raise UserError(f"{self.shard_dir}: holds shards made with other settings (weights, guidance, "
                            "seed, batch size or counts); delete it or choose another --out")

    def write_plan(self) -> None:
        """Create ``<out>.shards/plan.json`` (main process, after :meth:`check_plan`)."""
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        if not (self.shard_dir / "plan.json").is_file():
            _write_text(self.shard_dir / "plan.json", json.dumps(self.plan()))

    def shard_path(self, index: int) -> Path:
        return self.shard_dir / f"shard_{index:05d}.npz"

    def pending(self, process_index: int = 0, num_processes: int = 1) -> list[int]:
        """This process's shards that are not on disk yet."""
        return [s for s in range(process_index, len(self.shards), num_processes) if not self.shard_path(s).is_file()]

    # ------------------------------------------------------------------ generation
    def generate(self, process_index: int = 0, num_processes: int = 1, progress: bool = True) -> list[int]:
        """Make this process's missing shards; returns the indices made."""
        todo = self.pending(process_index, num_processes)
        if not todo:
            return []
        run = self.run
        guidance = self.config.guidance
        bank = run.exemplar_bank(self.train_set) if guidance.feature > 0 else None
        sampler = GuidedSampler(run.generator, run.recognizer, bank, guidance)
        index = NearCopyIndex(self.train_set, run.recognizer.spec.pipeline, run.generator.representation,
                              run.generator.stats)
        total = sum(self.shards[s][1] - self.shards[s][0] for s in todo)
        desc = "generating" if num_processes == 1 else f"generating (process {process_index})"
        with tqdm(total=total, desc=desc, unit="clip", disable=not progress, position=process_index) as bar:
            for shard in todo:
                self._make_shard(shard, sampler, index, bank)
                bar.update(self.shards[shard][1] - self.shards[shard][0])
        return todo

    def _make_shard(self, shard: int, sampler: GuidedSampler, index: NearCopyIndex,
                    bank: ExemplarBank | None) -> None:
        start, stop = self.shards[shard]
        labels = self.labels[start:stop]
        seed = int(np.random.SeedSequence([self.config.seed, shard]).generate_state(1)[0])
        positions, chosen = sampler.sample(torch.as_tensor(labels), noise=torch.Generator().manual_seed(seed),
                                           rng=np.random.default_rng([self.config.seed, shard]))
        spec = self.run.generator.spec
        clips = samples_to_dataset(positions.cpu().numpy(), labels, spec, self.run.generator.skeleton, self.source)
        confidence = self.run.recognizer.predict(clips)[np.arange(len(labels)), labels]
        distance, nearest = index.nearest(clips)
        exemplars = np.zeros((len(labels), 0), dtype=str)
        if bank is not None and chosen is not None:
            exemplars = np.array([[bank.clip_ids[i] for i in row] for row in chosen], dtype=str)
        _save_npz(self.shard_path(shard), {
            "joints": positions.cpu().numpy().astype(np.float32),
            "labels": labels,
            "confidence": confidence.astype(np.float32),
            "nearest_distance": distance.astype(np.float32),
            "nearest_clip": np.array([index.clip_ids[i] for i in nearest], dtype=str),
            "exemplars": exemplars,
        })

    def load_shard(self, shard: int) -> dict[str, np.ndarray]:
        """The arrays of one finished shard (DataFormatError if it is unreadable or incomplete)."""
        path = self.shard_path(shard)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in SHARD_KEYS}
        except (OSError, ValueError, KeyError) as error:
            raise DataFormatError(path, f"not a complete shard ({error}); delete it to make it again") from None
        return arrays

    # ------------------------------------------------------------------ merge
    def merge(self) -> dict[str, Any]:
        """Filter all shards into the archive ``<out>`` and write the summary ``<out>.json``.

        Returns:
            the summary (settings, counts overall and per class, where the files are).
        """
        missing = [s for s in range(len(self.shards)) if not self.shard_path(s).is_file()]
        if missing:
            raise UserError(f"{self.shard_dir}: {len(missing)} of {len(self.shards)} shards are missing "
                            f"(first: {missing[0]}); run the same command again to make them")
        spec = self.run.generator.spec
        empty = {"joints": np.zeros((0, spec.num_frames, self.run.generator.skeleton.num_joints, 3), np.float32),
                 "labels": np.zeros(0, np.int64), "confidence": np.zeros(0, np.float32),
                 "nearest_distance": np.zeros(0, np.float32), "nearest_clip": np.zeros(0, str)}
        shards = [self.load_shard(s) for s in range(len(self.shards))]
        arrays = {key: np.concatenate([first] + [shard[key] for shard in shards]) for key, first in empty.items()}
        keep, counts = apply_filters(arrays["confidence"], arrays["nearest_distance"], self.config.filters)
        kept = np.flatnonzero(keep)
        ids = [f"gen_{i:06d}" for i in range(len(keep))]
        dataset = MotionDataset(
            clips=[arrays["joints"][i] for i in kept], labels=arrays["labels"][kept],
            class_names=spec.class_names, skeleton=self.run.generator.skeleton,
            clip_ids=[ids[i] for i in kept], split=np.full(len(kept), "train"), fps=spec.fps,
            source=self.source)
        write_archive(dataset, self.out)
        labels = arrays["labels"]
        per_class = {}
        for k, name in enumerate(spec.class_names):
            mine = labels == k
            per_class[name] = {"real_train": int(np.sum(self.train_set.labels == k)), "generated": int(mine.sum()),
                               "kept": int((mine & keep).sum())}
        summary = {
            "archive": str(self.out),
            "source": self.source,
            "run": str(self.run.directory),
            "guidance": to_dict(self.config.guidance),
            "filters": to_dict(self.config.filters),
            "per_class": self.config.per_class,
            "balance": self.config.balance,
            "seed": self.config.seed,
            "counts": counts,
            "mean_confidence": float(arrays["confidence"].mean()) if len(labels) else None,
            "median_nearest_distance": float(np.median(arrays["nearest_distance"])) if len(labels) else None,
            "classes": per_class,
            "near_copies": [{"clip": ids[i], "nearest_training_clip": str(arrays["nearest_clip"][i]),
                             "distance": float(arrays["nearest_distance"][i])}
                            for i in np.flatnonzero(arrays["nearest_distance"] < self.config.filters.copy_threshold)],
            "shards": len(self.shards),
            "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write_text(self.summary_path, json.dumps(summary, indent=2) + "\n")
        logger.info("generated %d clips: dropped %d (%d below confidence %.2f, %d near-copies closer than %.3f), "
                    "kept %d -> %s", counts["generated"], counts["dropped"], counts["low_confidence"],
                    self.config.filters.min_confidence, counts["near_copy"], self.config.filters.copy_threshold,
                    counts["kept"], self.out)
        return summary

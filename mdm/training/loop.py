"""The training loop shared by the trainers: run folder, exact save/resume, epoch bookkeeping,
running-mean logging, and (for the epoch-based classifier trainers) the whole epoch loop.

:class:`CheckpointedRun` owns what every trainer needs: the Accelerator, the run folder, the
training state, the CSV log, save/resume through :meth:`checkpoint_objects`, and the
train-loader whose batch order depends only on ``(seed, epoch)`` (:meth:`start_epoch` resumes
it mid-epoch). :class:`EpochTrainer` adds the epoch loop with validation, selection on
validation top-1, early stopping and the test evaluation of a final report; subclasses provide :meth:`train_step`, :meth:`end_of_epoch`, :meth:`finish`,
:meth:`model_sizes` and a progress label.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mdm.config import save_yaml
from mdm.data.dataset import MotionDataset
from mdm.data.loader import ClipDataset, collate_clips
from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import ConfigError
from mdm.evaluation.metrics import classification_summary
from mdm.training.batches import EpochBatchSampler
from mdm.training.checkpoint import TrainingState, latest_checkpoint, load_checkpoint, save_checkpoint
from mdm.training.logs import CSVLogger
from mdm.training.stopping import StopFlag

MIXED_PRECISIONS = ("no", "bf16", "fp16")
"""The precisions Accelerate trains in here, and recognizers classify in."""


def steps_per_epoch(num_clips: int, batch_size: int) -> int:
    """Whole batches in an epoch; ConfigError when not even one fits."""
    steps = num_clips // batch_size
    if steps < 1:
        raise ConfigError(f"batch_size {batch_size} exceeds the {num_clips} training clips")
    return steps


def make_eval_loader(dataset: MotionDataset, pipeline: ClipPipelineConfig, batch_size: int) -> DataLoader:
    """Deterministic loader over every clip of ``dataset``, in order."""
    return DataLoader(ClipDataset(dataset, pipeline, train=False), batch_size=batch_size, shuffle=False,
                      collate_fn=collate_clips)


def check_mixed_precision(value: str) -> None:
    """ConfigError unless ``value`` is one of :data:`MIXED_PRECISIONS`."""
    if value not in MIXED_PRECISIONS:
        raise ConfigError(f"mixed_precision must be 'no', 'bf16' or 'fp16', got {value!r}")


def check_log_with(value: str) -> str | None:
    """The Accelerate tracker of ``log_with`` (None for ``none``); ConfigError for another value, or
    for ``tensorboard`` without the tensorboard package."""
    if value == "none":
        return None
    if value != "tensorboard":
        raise ConfigError(f"log_with must be 'none' or 'tensorboard', got {value!r}")
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("log_with=tensorboard needs the tensorboard package: pip install tensorboard")
    return value


def check_finite(terms: dict[str, float], step: int) -> None:
    """FloatingPointError when a training term is NaN or infinite."""
    if not all(math.isfinite(v) for v in terms.values()):
        raise FloatingPointError(f"a loss became non-finite at step {step}: {terms}")


def replace_folder(write: Callable[[Path], object], target: Path) -> None:
    """Write a folder under a temporary name with ``write(folder)``, then move it into place."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


class RunningMeans:
    """Per-step training terms collected between two log rows; their means are named
    ``train_<term>`` (terms already starting with ``train`` keep their name)."""

    def __init__(self) -> None:
        self._values: dict[str, list[float]] = {}

    def add(self, terms: dict[str, float]) -> None:
        for key, value in terms.items():
            self._values.setdefault(key, []).append(value)

    def pop(self) -> dict[str, float]:
        """The means since the last ``pop``; starts collecting anew."""
        means = {(k if k.startswith("train") else f"train_{k}"): float(np.mean(v)) for k, v in self._values.items()}
        self._values.clear()
        return means


class CheckpointedRun:
    """A run folder with an Accelerator, a training state, a CSV log and exact save/resume.

    Subclasses call ``super().__init__`` first, build their models, then :meth:`make_train_loader`,
    and provide :meth:`checkpoint_objects`.
    """

    logger = logging.getLogger("mdm.training")

    def __init__(self, config: Any, output_dir: str | Path, *, progress: bool, mixed_precision: str,
                 seed: int) -> None:
        self.config = config
        self.output_dir = Path(output_dir)
        self.progress = progress
        tracker = check_log_with(config.log_with)
        self.accelerator = Accelerator(mixed_precision=mixed_precision, log_with=tracker, project_dir=self.output_dir)
        if tracker is not None:
            self.accelerator.init_trackers(tracker)
        set_seed(seed)
        self.state = TrainingState()
        self.log = None
        if self.accelerator.is_main_process:
            self.log = CSVLogger(self.output_dir / "log.csv",
                                 tracker=None if tracker is None else self.accelerator.log)

    def close_trackers(self) -> None:
        """Flush and close the trackers (TensorBoard) at the end of a run."""
        self.accelerator.end_training()

    def make_train_loader(self, train_set: MotionDataset, pipeline: ClipPipelineConfig, batch_size: int, seed: int,
                          *, num_workers: int, balanced: bool = False, groups: np.ndarray | None = None) -> None:
        """Set ``sampler``, ``train_clips`` and ``train_loader`` (augmented clips, seeded batch order;
        ``balanced`` and ``groups`` as :class:`EpochBatchSampler` takes them)."""
        self.sampler = EpochBatchSampler(train_set.labels, batch_size, seed, balanced=balanced, groups=groups,
                                         process_index=self.accelerator.process_index,
                                         num_processes=self.accelerator.num_processes)
        self.train_clips = ClipDataset(train_set, pipeline, train=True, seed=seed)
        # A private generator: creating an iterator must not draw from the global RNG, or a resumed
        # run (which starts an iterator mid-epoch) would diverge from a straight one.
        self.train_loader = DataLoader(self.train_clips, batch_sampler=self.sampler, collate_fn=collate_clips,
                                       num_workers=num_workers, generator=torch.Generator())

    def start_epoch(self) -> int:
        """Point the sampler and the clips at the epoch of ``state.step``, from its next batch on."""
        epoch, start_batch = divmod(self.state.step, len(self.sampler))
        self.state.epoch = epoch
        self.sampler.set_epoch(epoch, start_batch)
        self.train_clips.set_epoch(epoch)
        return epoch

    def checkpoint_objects(self) -> dict[str, Any]:
        """``models``, ``optimizers``, ``schedulers`` and ``emas`` by name, as :func:`save_checkpoint` takes them."""
        raise NotImplementedError

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / "checkpoints"

    def write_config(self) -> None:
        """Create the run folder and write ``config.yaml`` (main process)."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.accelerator.is_main_process:
            save_yaml(self.config, self.output_dir / "config.yaml")

    def save(self) -> None:
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            save_checkpoint(self.checkpoint_dir, **self.checkpoint_objects(), state=self.state, config=self.config)

    def resume(self) -> None:
        """Continue from the latest checkpoint of the run folder."""
        self.state = load_checkpoint(latest_checkpoint(self.checkpoint_dir), **self.checkpoint_objects())
        if self.log is not None:
            self.log.truncate_after(self.state.step)
        self.logger.info("resumed at step %d (epoch %d)", self.state.step, self.state.epoch)


class EpochTrainer(CheckpointedRun):
    """An epoch loop: validation and a checkpoint after every epoch, early stopping, a final report.

    Subclasses set ``train_set``, ``val_set``, ``test_set`` and ``total_steps`` and provide the
    hooks below. ``config`` needs ``log_every`` (and, for :meth:`predict`, ``pipeline`` and
    ``batch_size``).
    """

    progress_label = "train"
    postfix_terms: tuple[str, ...] = ()
    """Training terms shown on the progress bar."""

    train_set: MotionDataset
    val_set: MotionDataset
    test_set: MotionDataset
    total_steps: int
    started: float
    """``time.monotonic()`` when this session's :meth:`fit` began."""

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step; returns the training terms to log."""
        raise NotImplementedError

    def end_of_epoch(self, epoch: int) -> bool:
        """Validate after (0-based) ``epoch``, keep the best model; True stops the run early."""
        raise NotImplementedError

    def finish(self) -> dict[str, Any]:
        """Final evaluation and reports (main process, once the run is complete)."""
        raise NotImplementedError

    def model_sizes(self) -> str:
        """Parameter counts for the log, e.g. ``'evaluator: 1,234 parameters'``."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, dataset: MotionDataset, model: torch.nn.Module) -> tuple[np.ndarray, float]:
        """Logits ``[N, K]`` of every clip (evaluation pipeline) of a classifier whose output has
        ``.logits``, and their mean cross-entropy."""
        model.eval()
        loader = make_eval_loader(dataset, self.config.pipeline, self.config.batch_size)
        logits = torch.cat([model(batch["motion"].to(self.accelerator.device)).logits.float().cpu()
                            for batch in loader])
        return logits.numpy(), float(F.cross_entropy(logits, torch.as_tensor(dataset.labels)))

    def test_report(self, model: torch.nn.Module) -> tuple[dict[str, Any], np.ndarray]:
        """:func:`classification_summary` of ``model`` on the test split, with its ``cross_entropy``, and
        the test logits ``[N, K]`` it was computed from."""
        logits, test_ce = self.predict(self.test_set, model)
        report = classification_summary(logits, self.test_set.labels, self.test_set.class_names)
        report["cross_entropy"] = test_ce
        return report, logits

    def record_top1(self, epoch: int, top1: float, val_ce: float) -> bool:
        """Update ``best_top1``/``best_val_ce``/``best_epoch``/``stale_epochs`` of ``state.extra``;
        True when this epoch is the best so far (ties on top-1: lower cross-entropy)."""
        extra = self.state.extra
        if (top1, -val_ce) > (extra["best_top1"], -extra["best_val_ce"]):
            extra.update(best_top1=top1, best_val_ce=val_ce, best_epoch=epoch + 1, stale_epochs=0)
            return True
        extra["stale_epochs"] += 1
        return False

    def patience_exhausted(self, patience: int) -> bool:
        """True (and logged) after ``patience`` epochs without a better validation top-1."""
        if self.state.extra["stale_epochs"] >= patience:
            self.logger.info("early stopping: no better validation top-1 for %d epochs", patience)
            return True
        return False

    def fit(self, max_minutes: float | None = None, stop_at_step: int | None = None) -> Path:
        """Train until the epochs run out, early stopping, the time budget, a signal or ``stop_at_step``;
        then (unless stopped by a signal or ``stop_at_step``) write the final reports with :meth:`finish`."""
        self.write_config()
        main = self.accelerator.is_main_process
        if main:
            self.logger.info("%s; %d train / %d val / %d test clips; %d steps", self.model_sizes(),
                             len(self.train_set), len(self.val_set), len(self.test_set), self.total_steps)
        epoch_steps = len(self.sampler)
        last_step = min(self.total_steps, stop_at_step or self.total_steps)
        bar = tqdm(total=self.total_steps, initial=self.state.step, desc=self.progress_label, unit="step",
                   disable=not (self.progress and main))
        self.started = time.monotonic()
        running = RunningMeans()
        finished_early = False
        with StopFlag(max_minutes) as stop:
            while self.state.step < last_step and not stop.should_stop() and not finished_early:
                epoch = self.start_epoch()
                for batch in self.train_loader:
                    terms = self.train_step(batch)
                    check_finite(terms, self.state.step)
                    self.state.step += 1
                    running.add(terms)
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items() if k in self.postfix_terms})
                    if self.log is not None and self.state.step % self.config.log_every == 0:
                        self.log.log({"step": self.state.step, "epoch": epoch, **running.pop(),
                                      "elapsed_s": time.monotonic() - self.started})
                    if self.state.step >= last_step or stop.should_stop():
                        break
                if self.state.step % epoch_steps == 0:
                    finished_early = self.end_of_epoch(epoch)
                    self.save()
        bar.close()
        if stop.reason and self.state.step % epoch_steps:
            self.end_of_epoch(self.state.epoch)  # a partial epoch still counts when the budget ends the run
        self.save()
        if stop.reason:
            self.logger.warning("stopped at step %d (%s); continue with --resume %s", self.state.step, stop.reason,
                                self.output_dir)
        interrupted = stop.reason is not None and stop.reason.startswith("signal")
        if main and not (interrupted or (stop_at_step and self.state.step < self.total_steps and not finished_early)):
            self.finish()
        self.close_trackers()
        return self.output_dir

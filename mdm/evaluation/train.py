"""Training the evaluator ST-GCN on real training clips, on Accelerate (CPU, one GPU, or many).

Per epoch: the EMA model's top-1 and cross-entropy on the validation split (carved from the
training clips); the best EMA model by validation top-1 (ties: lower cross-entropy) is kept
as ``evaluator/``; early stopping on top-1. At the end the kept evaluator is evaluated once on
the test split, which nothing else reads. Multi-person data is reduced to its first person,
as the generator does, since the evaluator judges generated one-person clips.

Run folder::

    config.yaml  checkpoints/  log.csv  curves.png
    evaluator/        the selected evaluator (mdm.evaluation.bundle.TrainedEvaluator)
    metrics.json      test top-1/top-5, per-class accuracy, confusion matrix; validation figures
    summary.txt
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mdm.data.sources import DataConfig, load_training_data
from mdm.data.transforms import ClipPipelineConfig, recognition_pipeline
from mdm.errors import ConfigError
from mdm.evaluation.bundle import EvaluatorSpec, TrainedEvaluator
from mdm.evaluation.stgcn import STGCN, stgcn_preset
from mdm.models.denoiser import count_parameters
from mdm.training.checkpoint import TrainingState
from mdm.training.ema import EMA
from mdm.training.logs import plot_curves
from mdm.training.loop import EpochTrainer, check_mixed_precision, replace_folder, steps_per_epoch
from mdm.data.dataset import single_person
from mdm.training.optim import OptimConfig, make_optimizer

logger = logging.getLogger("mdm.evaluation")


@dataclass
class EvaluatorTrainConfig:
    """Everything an evaluator training run needs (saved as the run's ``config.yaml``)."""

    data: DataConfig = field(default_factory=DataConfig)
    pipeline: ClipPipelineConfig = field(default_factory=recognition_pipeline)
    preset: str = "cpu"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-3, weight_decay=0.01, warmup_steps=50))
    label_smoothing: float = 0.1
    batch_size: int = 32
    epochs: int = 60
    patience: int = 60
    ema_decay: float = 0.98
    mixed_precision: str = "no"
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    log_with: str = "none"
    """``tensorboard`` also sends the rows of ``log.csv`` to TensorBoard (``<run>/tensorboard``)."""

    def __post_init__(self) -> None:
        check_mixed_precision(self.mixed_precision)
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ConfigError("epochs, batch_size and patience must be positive")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")


class EvaluatorTrainer(EpochTrainer):
    """Trains the evaluator :class:`STGCN`; see the module docstring for the run folder."""

    logger = logger
    progress_label = "evaluator"
    postfix_terms = ("ce", "acc")

    def __init__(self, config: EvaluatorTrainConfig, output_dir: str | Path, *, progress: bool = True) -> None:
        super().__init__(config, output_dir, progress=progress, mixed_precision=config.mixed_precision,
                         seed=config.seed)
        self.dataset = single_person(load_training_data(config.data))
        self.train_set = self.dataset.split_subset("train")
        self.val_set = self.dataset.split_subset("val")
        self.test_set = self.dataset.split_subset("test")
        if len(self.val_set) == 0:
            raise ConfigError("the validation split is empty: raise data.val_fraction or use more training clips")
        skeleton = self.dataset.skeleton
        model_config = stgcn_preset(config.preset, **{
            "num_joints": skeleton.num_joints, "in_channels": 3, "num_classes": self.dataset.num_classes,
            "parents": skeleton.parents, **config.model_overrides})
        model = STGCN(model_config)
        self.spec = EvaluatorSpec(model=model_config, pipeline=config.pipeline, data=config.data,
                                  class_names=list(self.dataset.class_names), joint_names=list(skeleton.joint_names),
                                  skeleton_name=skeleton.name, source=self.dataset.source)
        self.ema = EMA(model, decay=config.ema_decay, warmup_steps=20)
        self.total_steps = config.epochs * steps_per_epoch(len(self.train_set), config.batch_size)
        optimizer, schedule = make_optimizer(model.parameters(), config.optim, self.total_steps)
        self.model, self.optimizer, self.schedule = self.accelerator.prepare(model, optimizer, schedule)
        self.ema.model.to(self.accelerator.device)
        self.make_train_loader(self.train_set, config.pipeline, config.batch_size, config.seed,
                               num_workers=config.num_workers)
        self.state = TrainingState(extra={"best_top1": -1.0, "best_val_ce": math.inf, "best_epoch": -1,
                                          "stale_epochs": 0})

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_objects(self) -> dict[str, Any]:
        return {"models": {"evaluator": self.accelerator.unwrap_model(self.model)},
                "optimizers": {"evaluator": self.optimizer}, "schedulers": {"evaluator": self.schedule},
                "emas": {"evaluator": self.ema}}

    # ----------------------------------------------------------------- steps
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step; returns the cross-entropy and the batch accuracy."""
        device = self.accelerator.device
        motion, labels = batch["motion"].to(device), batch["label"].to(device)
        self.model.train()
        logits = self.model(motion).logits.float()
        loss = F.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if self.config.optim.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        self.ema.update(self.accelerator.unwrap_model(self.model))
        return {"ce": float(loss.detach()), "acc": float((logits.argmax(-1) == labels).float().mean())}

    # ----------------------------------------------------------------- epochs
    def model_sizes(self) -> str:
        return f"evaluator: {count_parameters(self.accelerator.unwrap_model(self.model)):,} parameters"

    def end_of_epoch(self, epoch: int) -> bool:
        """Validate the EMA model, keep it when best, decide on early stopping (True = stop)."""
        extra = self.state.extra
        logits, val_ce = self.predict(self.val_set, self.ema.model)
        top1 = float(np.mean(logits.argmax(1) == self.val_set.labels))
        if self.record_top1(epoch, top1, val_ce) and self.accelerator.is_main_process:
            self._save_evaluator()
        if self.log is not None:
            self.log.log({"step": self.state.step, "epoch": epoch + 1, "val_top1": top1, "val_ce": val_ce})
        logger.info("epoch %d: val top-1 %.4f, val ce %.4f (best %.4f at epoch %d)", epoch + 1, top1, val_ce,
                    extra["best_top1"], extra["best_epoch"])
        return self.patience_exhausted(self.config.patience)

    def _save_evaluator(self) -> None:
        replace_folder(TrainedEvaluator(self.spec, self.ema.model).save, self.output_dir / "evaluator")

    # ----------------------------------------------------------------- reports
    def finish(self) -> dict[str, Any]:
        """Evaluate the kept evaluator once on the test split; write metrics.json, curves.png, summary.txt."""
        out = self.output_dir
        evaluator = TrainedEvaluator.load(out / "evaluator", device=self.accelerator.device)
        report, _ = self.test_report(evaluator.model)
        extra = self.state.extra
        metrics = {
            "dataset": self.config.data.name,
            "source": self.dataset.source,
            "seed": self.config.seed,
            "parameters": count_parameters(evaluator.model),
            "clips": {"train": len(self.train_set), "val": len(self.val_set), "test": len(self.test_set)},
            "steps": self.state.step,
            "epochs_run": self.state.step // len(self.sampler),
            "train_seconds_this_session": round(time.monotonic() - self.started, 1),
            "selection": "EMA weights with the best validation top-1 (ties: lower validation cross-entropy)",
            "best_epoch": extra["best_epoch"],
            "val_top1": extra["best_top1"],
            "test": report,
        }
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if (out / "log.csv").is_file():
            plot_curves(out / "log.csv", out / "curves.png",
                        {"loss": ["train_ce", "val_ce"], "accuracy": ["train_acc", "val_top1"]})
        summary = (f"evaluator run: {out}\n"
                   f"data: {self.config.data.name} ({len(self.train_set)} train / {len(self.val_set)} val / "
                   f"{len(self.test_set)} test clips); {metrics['parameters']:,} parameters\n"
                   f"steps: {metrics['steps']} ({metrics['epochs_run']} epochs); best epoch {metrics['best_epoch']}, "
                   f"validation top-1 {metrics['val_top1']:.2%}\n"
                   f"TEST top-1: {report['top1']:.2%}   top-5: {report['top5']:.2%}\n")
        (out / "summary.txt").write_text(summary)
        print(summary, end="")
        return metrics


def train_evaluator(config: EvaluatorTrainConfig, output_dir: str | Path, *, resume: bool = False,
                    max_minutes: float | None = None, progress: bool = True) -> Path:
    """Train (or, with ``resume``, continue) an evaluator run in ``output_dir``."""
    trainer = EvaluatorTrainer(config, output_dir, progress=progress)
    if resume:
        trainer.resume()
    return trainer.fit(max_minutes)

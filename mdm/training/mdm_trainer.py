"""Training the motion diffusion model alone, on Accelerate (CPU, one GPU, or many).

A run folder holds::

    config.yaml           the resolved config
    checkpoints/          resumable checkpoints (see mdm.training.checkpoint)
    log.csv               training loss per log interval, validation loss per evaluation
    loss_curves.png       both curves
    generator/            the EMA denoiser ready for sampling (mdm.generator.MotionGenerator)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mdm.data.dataset import MotionDataset, single_person
from mdm.data.sources import DataConfig, load_training_data
from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import ConfigError
from mdm.generator import DiffusionConfig, MotionGenerator, generator_spec_for
from mdm.losses import DiffusionLossWeights
from mdm.models.denoiser import MotionDenoiser, count_parameters, denoiser_preset
from mdm.representation import PositionRepresentation
from mdm.training.ema import EMA
from mdm.training.logs import plot_curves
from mdm.training.loop import CheckpointedRun, RunningMeans, check_finite, check_mixed_precision, make_eval_loader
from mdm.training.objective import DiffusionObjective, fit_feature_stats
from mdm.training.optim import OptimConfig, make_optimizer
from mdm.training.stopping import StopFlag

logger = logging.getLogger("mdm.train")
VALIDATION_SEED = 1234
"""Feature standard deviations are floored at this share of the features' overall spread."""


@dataclass
class MDMTrainConfig:
    """Everything a diffusion training run needs (saved as the run's ``config.yaml``)."""

    data: DataConfig = field(default_factory=DataConfig)
    pipeline: ClipPipelineConfig = field(default_factory=lambda: ClipPipelineConfig(
        num_frames=60, sampling="resample", centre="first_frame", rotation_deg=0.0))
    preset: str = "cpu"
    denoiser_overrides: dict[str, Any] = field(default_factory=dict)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    loss: DiffusionLossWeights = field(default_factory=DiffusionLossWeights)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 64
    max_steps: int = 2000
    ema_decay: float = 0.999
    mixed_precision: str = "no"
    log_every: int = 25
    log_with: str = "none"
    """``tensorboard`` also sends the rows of ``log.csv`` to TensorBoard (``<run>/tensorboard``)."""
    val_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0
    num_workers: int = 0
    condition_on_style: bool = False
    """Also condition on the data's second label (``styles``, as the Bandai Namco reader keeps the
    performance style), with its own classifier-free dropout (``denoiser_overrides.style_drop_prob``)."""

    def __post_init__(self) -> None:
        check_mixed_precision(self.mixed_precision)
        if self.max_steps < 1 or self.batch_size < 1:
            raise ConfigError("max_steps and batch_size must be positive")


class MDMTrainer(CheckpointedRun):
    """Trains a :class:`MotionDenoiser` on one dataset; see the module docstring for outputs."""

    logger = logger

    def __init__(self, config: MDMTrainConfig, output_dir: str | Path, *, progress: bool = True) -> None:
        super().__init__(config, output_dir, progress=progress, mixed_precision=config.mixed_precision,
                         seed=config.seed)
        dataset = single_person(load_training_data(config.data))
        self.train_set = dataset.split_subset("train")
        self.val_set = dataset.split_subset("val")
        self.representation = PositionRepresentation(dataset.skeleton)
        stats = fit_feature_stats(self.train_set, config.pipeline, self.representation)
        if config.condition_on_style and dataset.style_names is None:
            raise ConfigError(f"condition_on_style needs data with a style per clip; {dataset.source} has none")
        num_styles = len(dataset.style_names) if config.condition_on_style else 0
        denoiser_config = denoiser_preset(
            config.preset,
            **{"num_joints": self.representation.num_slots, "num_channels": self.representation.num_channels,
               "num_classes": dataset.num_classes, "num_styles": num_styles, **config.denoiser_overrides},
        )
        self.spec = generator_spec_for(dataset, denoiser_config, config.diffusion, config.pipeline)
        model = MotionDenoiser(denoiser_config)
        self.ema = EMA(model, decay=config.ema_decay)
        self.objective = DiffusionObjective(config.diffusion.make_scheduler(), self.representation, stats, config.loss)
        optimizer, lr_schedule = make_optimizer(model.parameters(), config.optim, config.max_steps)
        self.model, self.optimizer, self.lr_schedule = self.accelerator.prepare(model, optimizer, lr_schedule)
        self.ema.model.to(self.accelerator.device)
        self.make_train_loader(self.train_set, config.pipeline, config.batch_size, config.seed,
                               num_workers=config.num_workers)
        self.val_loader = make_eval_loader(self.val_set, config.pipeline, config.batch_size)

    def checkpoint_objects(self) -> dict[str, Any]:
        return {
            "models": {"denoiser": self.accelerator.unwrap_model(self.model)},
            "optimizers": {"denoiser": self.optimizer},
            "schedulers": {"denoiser": self.lr_schedule},
            "emas": {"denoiser": self.ema},
        }

    def _batch(self, batch: dict[str, torch.Tensor], clips: MotionDataset) -> dict[str, torch.Tensor | None]:
        """``x0`` features, ``mask``, ``labels`` and ``styles`` (None unless style-conditioned) of a batch of ``clips``."""
        device = self.accelerator.device
        styles = None
        if self.config.condition_on_style:
            styles = torch.as_tensor(clips.styles[batch["index"].numpy()], device=device)
        return {"x0": self.objective.features(batch["motion"].to(device)), "mask": batch["mask"].to(device),
                "labels": batch["label"].to(device), "styles": styles}

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Mean denoising loss of the EMA model on the validation clips, with fixed noise."""
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        total, count = 0.0, 0
        for batch in self.val_loader:
            inputs = self._batch(batch, self.val_set)
            loss, _ = self.objective(self.ema.model, **inputs, generator=generator)
            total += float(loss) * len(inputs["labels"])
            count += len(inputs["labels"])
        return total / max(count, 1)

    def train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, dict[str, float]]:
        self.model.train()
        loss, terms = self.objective(self.model, **self._batch(batch, self.train_set))
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if self.config.optim.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.lr_schedule.step()
        self.ema.update(self.accelerator.unwrap_model(self.model))
        return float(loss.detach()), {k: float(v.detach()) for k, v in terms.items()}

    def fit(self, max_minutes: float | None = None, stop_at_step: int | None = None) -> Path:
        """Train until ``max_steps`` (or the time budget, a stop signal, or ``stop_at_step``).

        Stopping early saves a checkpoint that ``--resume`` continues exactly. Returns the run folder.
        """
        config = self.config
        last_step = min(config.max_steps, stop_at_step or config.max_steps)
        self.write_config()
        if self.accelerator.is_main_process:
            logger.info("denoiser: %s parameters; %d train / %d val clips",
                        f"{count_parameters(self.accelerator.unwrap_model(self.model)):,}",
                        len(self.train_set), len(self.val_set))
        bar = tqdm(total=config.max_steps, initial=self.state.step, desc="mdm", unit="step",
                   disable=not (self.progress and self.accelerator.is_main_process))
        running = RunningMeans()
        started = time.monotonic()
        with StopFlag(max_minutes) as stop:
            while self.state.step < last_step and not stop.should_stop():
                self.start_epoch()
                for batch in self.train_loader:
                    loss, _ = self.train_step(batch)
                    check_finite({"loss": loss}, self.state.step)
                    self.state.step += 1
                    running.add({"loss": loss})
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{self.lr_schedule.get_last_lr()[0]:.2e}")
                    self._after_step(running, started)
                    if self.state.step >= last_step or stop.should_stop():
                        break
        bar.close()
        if stop.reason:
            logger.warning("stopping at step %d (%s); resume with --resume %s", self.state.step, stop.reason,
                           self.output_dir)
        self.save()
        self.finish()
        self.close_trackers()
        return self.output_dir

    def _after_step(self, running: RunningMeans, started: float) -> None:
        config, step = self.config, self.state.step
        if self.log is not None and step % config.log_every == 0:
            self.log.log({"step": step, **running.pop(), "lr": self.lr_schedule.get_last_lr()[0],
                          "elapsed_s": time.monotonic() - started})
        if step % config.val_every == 0 or step == config.max_steps:
            val = self.validation_loss()
            if self.log is not None:
                self.log.log({"step": step, "val_loss": val})
        if step % config.checkpoint_every == 0:
            self.save()

    def finish(self) -> None:
        """Write the EMA generator and the loss curves (main process)."""
        if not self.accelerator.is_main_process:
            return
        generator = MotionGenerator(self.spec, self.ema.model, self.objective.stats)
        generator.save(self.output_dir / "generator")
        if (self.output_dir / "log.csv").is_file():
            plot_curves(self.output_dir / "log.csv", self.output_dir / "loss_curves.png",
                        {"diffusion loss": ["train_loss", "val_loss"]})


def train_mdm(config: MDMTrainConfig, output_dir: str | Path, *, resume: bool = False,
              max_minutes: float | None = None, progress: bool = True) -> Path:
    """Train (or, with ``resume``, continue) a diffusion model run in ``output_dir``."""
    trainer = MDMTrainer(config, output_dir, progress=progress)
    if resume:
        trainer.resume()
    return trainer.fit(max_minutes)

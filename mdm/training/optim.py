"""Optimiser and learning-rate schedule shared by every training loop."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from transformers import get_cosine_schedule_with_warmup

from mdm.errors import ConfigError
from mdm.training.ema import EMA


@dataclass
class OptimConfig:
    """AdamW with linear warm-up and cosine decay; gradient clipping.

    Attributes:
        lr: peak learning rate.
        weight_decay: of weight matrices (biases and norms have none).
        betas: AdamW's.
        warmup_steps: linear warm-up (at most a tenth of the schedule).
        grad_clip: largest gradient norm (0: no clipping).
    """

    lr: float = 2e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 200
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be positive, got {self.lr}")
        if self.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")


def make_optimizer(
    parameters: Iterable[torch.nn.Parameter], config: OptimConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``parameters`` (biases and norms without weight decay) and its schedule.

    The schedule is transformers' ``get_cosine_schedule_with_warmup`` over ``total_steps``.
    """
    decay, no_decay = [], []
    for parameter in parameters:
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)
    warmup = min(config.warmup_steps, max(total_steps // 10, 0))
    return optimizer, get_cosine_schedule_with_warmup(optimizer, warmup, max(total_steps, 1))



class OptimisedModel:
    """A model trained by one optimiser, with its learning-rate schedule, gradient clipping and EMA.

    Args:
        name: the key of its weights, optimiser, schedule and EMA in checkpoints.
        model: the module trained.
        config: optimiser settings (``grad_clip`` 0 turns clipping off).
        total_steps: length of the cosine schedule.
        ema_decay: decay of the weight average (:class:`EMA`).
        ema_warmup: updates over which the EMA's decay ramps up.
    """

    def __init__(self, name: str, model: torch.nn.Module, config: OptimConfig, total_steps: int, *,
                 ema_decay: float, ema_warmup: int = 100) -> None:
        self.name = name
        self.grad_clip = config.grad_clip
        self.model = model
        self.ema = EMA(model, decay=ema_decay, warmup_steps=ema_warmup)
        self.optimizer, self.schedule = make_optimizer(model.parameters(), config, total_steps)

    def prepare(self, accelerator: Accelerator) -> None:
        """Hand the model, optimiser and schedule to ``accelerator``; the EMA follows to its device."""
        self.model, self.optimizer, self.schedule = accelerator.prepare(self.model, self.optimizer, self.schedule)
        self.ema.model.to(accelerator.device)

    def step(self, accelerator: Accelerator) -> None:
        """After the backward pass: clip gradients, step the optimiser and the schedule, update the EMA."""
        if self.grad_clip > 0:
            accelerator.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        self.ema.update(accelerator.unwrap_model(self.model))

"""The reverse-diffusion sampling loop around an x0-predicting model, and classifier-free guidance.

Samplers: ``ddim`` and ``ddpm`` (the project's :class:`DiffusionScheduler`), and ``dpm++``, the second-order
multistep DPM-Solver++ of the ``diffusers`` library (``DPMSolverMultistepScheduler``, given this
scheduler's own betas and told the model predicts the clean sample), a well-kept implementation of a
few-step ODE solver rather than one written here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from tqdm.auto import tqdm

from mdm.diffusion.scheduler import STEP_METHODS, DiffusionScheduler, standard_normal
from mdm.errors import ConfigError

if TYPE_CHECKING:
    from diffusers import DPMSolverMultistepScheduler

ModelFn = Callable[[Tensor, Tensor], Tensor]
"""``model_fn(x_t [B, ...], t [B] int64) -> x0 [B, ...]``; conditioning is closed over by the caller."""

X0Guidance = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``guidance(x0_pred [B, ...], x_t [B, ...], t [B] int64) -> x0_pred [B, ...]``."""

DPM_SOLVER = "dpm++"
SAMPLING_METHODS = (*STEP_METHODS, DPM_SOLVER)
"""The samplers :func:`sample` runs."""


def check_sampling_method(method: str) -> None:
    """ConfigError unless ``method`` is one of :data:`SAMPLING_METHODS`."""
    if method not in SAMPLING_METHODS:
        raise ConfigError(f"sampling method must be one of {', '.join(SAMPLING_METHODS)}; got {method!r}")


def dpm_solver(scheduler: DiffusionScheduler, num_inference_steps: int, spacing: str) -> DPMSolverMultistepScheduler:
    """diffusers' DPM-Solver++ (2nd order, multistep) on ``scheduler``'s training betas, for an x0-predicting
    model, its timesteps set to ``num_inference_steps`` with ``spacing``. (diffusers is imported here, when
    this sampler runs: importing it takes about a second.)"""
    from diffusers import DPMSolverMultistepScheduler

    solver = DPMSolverMultistepScheduler(num_train_timesteps=scheduler.num_train_timesteps,
                                         trained_betas=scheduler.train.betas.double().numpy(),
                                         prediction_type="sample", algorithm_type="dpmsolver++", solver_order=2,
                                         timestep_spacing=spacing)
    solver.set_timesteps(num_inference_steps)
    return solver


def classifier_free_guidance(cond_x0: Tensor, uncond_x0: Tensor, scale: float) -> Tensor:
    """Combine conditional and unconditional predictions: ``uncond + scale * (cond - uncond)``.

    Args:
        cond_x0: conditional x0 prediction ``[B, ...]``.
        uncond_x0: unconditional x0 prediction ``[B, ...]``.
        scale: guidance scale; 1 gives ``cond_x0``, 0 gives ``uncond_x0``.

    Returns:
        guided x0 prediction ``[B, ...]``.
    """
    return uncond_x0 + scale * (cond_x0 - uncond_x0)


@torch.no_grad()
def sample(
    model_fn: ModelFn,
    scheduler: DiffusionScheduler,
    shape: Sequence[int],
    *,
    num_inference_steps: int,
    method: str = "ddim",
    eta: float = 0.0,
    spacing: str = "trailing",
    generator: torch.Generator | None = None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
    x0_guidance: X0Guidance | None = None,
    progress: bool = False,
    init_noise: Tensor | None = None,
) -> Tensor:
    """Run the full reverse process from pure noise to clean samples.

    Runs under ``torch.no_grad()``; a guidance hook that needs gradients (classifier guidance)
    opens ``torch.enable_grad()`` itself. Calls ``scheduler.set_timesteps``, so the scheduler keeps
    this respacing afterwards.

    Args:
        model_fn: ``(x_t [B, ...], t [B] int64) -> x0 [B, ...]``; t are original training steps.
        scheduler: the noise scheduler the model was trained with.
        shape: ``[B, ...]`` of the samples, e.g. ``[B, T, J, C]``.
        num_inference_steps: number of reverse steps (respacing), ``<= scheduler.num_train_timesteps``.
        method: ``ddim``, ``ddpm`` or ``dpm++`` (:data:`SAMPLING_METHODS`).
        eta: DDIM noise scale (0 deterministic, 1 the DDPM posterior); ignored by the others.
        spacing: which training steps to keep: ``trailing``, ``leading`` or ``linspace``.
        generator: random generator for the initial and per-step noise.
        device: device of the samples and of ``t``.
        dtype: floating dtype of the samples.
        x0_guidance: optional ``(x0_pred, x_t, t) -> x0_pred`` applied after every model call.
        progress: show a tqdm progress bar.
        init_noise: optional starting ``x_T`` of ``shape`` (drawn from ``generator`` otherwise).

    Returns:
        clean samples ``[B, ...]`` of ``shape``.
    """
    check_sampling_method(method)
    shape = tuple(shape)
    scheduler.set_timesteps(num_inference_steps, spacing=spacing)
    if init_noise is None:
        x = standard_normal(shape, generator=generator, device=device, dtype=dtype)
    elif tuple(init_noise.shape) != shape:
        raise ValueError(f"init_noise has shape {tuple(init_noise.shape)}, expected {shape}")
    else:
        x = init_noise.to(device=device, dtype=dtype)
    solver = dpm_solver(scheduler, num_inference_steps, spacing) if method == DPM_SOLVER else None
    timesteps = scheduler.timesteps.tolist() if solver is None else solver.timesteps.tolist()
    for timestep in tqdm(timesteps, desc="sampling", disable=not progress):
        t = torch.full((shape[0],), timestep, dtype=torch.int64, device=device)
        pred_x0 = model_fn(x, t)
        if x0_guidance is not None:
            pred_x0 = x0_guidance(pred_x0, x, t)
        if solver is None:
            x = scheduler.step(pred_x0, timestep, x, eta=eta, method=method, generator=generator).prev_sample
        else:
            x = solver.step(pred_x0, timestep, x).prev_sample
    return x

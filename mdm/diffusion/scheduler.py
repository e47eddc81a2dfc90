"""The diffusion noise scheduler: betas, the forward process, the posterior, DDPM/DDIM steps, respacing.

The scheduler is separate from the denoiser. The denoiser predicts the clean motion x0 (as MDM
does); only x0 prediction is supported. Every tensor argument is ``[B, ...]`` (motion
``[B, T, J, C]``); per-step coefficients broadcast over all trailing dimensions. Tables are kept
in float64 on the CPU and each looked-up coefficient is moved to the input's dtype and device.

Respacing follows openai/guided-diffusion ``respace.py``: keeping a subset S of the training
steps defines a shorter process whose cumulative alphas equal the original ones at the kept
steps, with betas derived from them. Timesteps stay the original indices, so the denoiser is
never wrapped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mdm.errors import ConfigError

BETA_SCHEDULES = ("linear", "cosine")
TIMESTEP_SPACINGS = ("trailing", "leading", "linspace")
STEP_METHODS = ("ddim", "ddpm")


def linear_betas(num_train_timesteps: int) -> Tensor:
    """Ho et al. linear betas, rescaled so any length matches the 1000-step schedule.

    Args:
        num_train_timesteps: number of diffusion steps N.

    Returns:
        float64 ``[N]`` from ``1e-4 * 1000 / N`` to ``0.02 * 1000 / N``.
    """
    scale = 1000.0 / num_train_timesteps
    return torch.linspace(scale * 1e-4, scale * 0.02, num_train_timesteps, dtype=torch.float64)


def cosine_alpha_bar(s: np.ndarray) -> np.ndarray:
    """Nichol & Dhariwal's cumulative alpha ``cos((s + 0.008) / 1.008 * pi / 2) ** 2`` at ``s`` in [0, 1]."""
    return np.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


def cosine_betas(num_train_timesteps: int, max_beta: float = 0.999) -> Tensor:
    """Nichol & Dhariwal cosine betas ``1 - alpha_bar((i + 1) / N) / alpha_bar(i / N)``, clipped.

    Args:
        num_train_timesteps: number of diffusion steps N.
        max_beta: upper clip that keeps the last steps away from beta = 1.

    Returns:
        float64 ``[N]``.
    """
    s = np.arange(num_train_timesteps + 1, dtype=np.float64) / num_train_timesteps
    alpha_bar = cosine_alpha_bar(s)
    betas = np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], max_beta)
    return torch.from_numpy(betas)


@dataclass(frozen=True)
class NoiseSchedule:
    """The float64 ``[N]`` tables of one diffusion process, all derived from its cumulative alphas.

    Index k is step k of this process; ``alphas_cumprod_prev[0] == 1`` (the clean data).
    """

    betas: Tensor
    alphas_cumprod: Tensor
    alphas_cumprod_prev: Tensor
    sqrt_alphas_cumprod: Tensor
    sqrt_one_minus_alphas_cumprod: Tensor
    posterior_variance: Tensor
    posterior_log_variance_clipped: Tensor
    posterior_mean_coef1: Tensor
    posterior_mean_coef2: Tensor

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: Tensor) -> NoiseSchedule:
        """Compute every table from float64 cumulative alphas ``[N]``, decreasing in (0, 1).

        Building from ``alphas_cumprod`` (not from betas) keeps them exact, so a respaced process
        has exactly the original values at its kept steps; betas are ``1 - abar_k / abar_{k-1}``.
        """
        alphas_cumprod = alphas_cumprod.to(torch.float64)
        alphas_cumprod_prev = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
        alphas = alphas_cumprod / alphas_cumprod_prev
        betas = 1.0 - alphas
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        # The posterior variance is 0 at step 0; its log is clipped to step 1's value
        # (a one-step process has no step 1 and uses its beta, the "fixed large" variance).
        first = posterior_variance[1:2] if len(betas) > 1 else betas[:1]
        return cls(
            betas=betas,
            alphas_cumprod=alphas_cumprod,
            alphas_cumprod_prev=alphas_cumprod_prev,
            sqrt_alphas_cumprod=alphas_cumprod.sqrt(),
            sqrt_one_minus_alphas_cumprod=(1.0 - alphas_cumprod).sqrt(),
            posterior_variance=posterior_variance,
            posterior_log_variance_clipped=torch.log(torch.cat([first, posterior_variance[1:]])),
            posterior_mean_coef1=betas * alphas_cumprod_prev.sqrt() / (1.0 - alphas_cumprod),
            posterior_mean_coef2=(1.0 - alphas_cumprod_prev) * alphas.sqrt() / (1.0 - alphas_cumprod),
        )


@dataclass
class SchedulerStepOutput:
    """What one reverse step returns.

    Attributes:
        prev_sample: ``x_{t_prev}``, ``[B, ...]``, the input of the next step.
        pred_original_sample: the x0 prediction the step used, ``[B, ...]``.
    """

    prev_sample: Tensor
    pred_original_sample: Tensor


def _gather(values: Tensor, index: Tensor, like: Tensor) -> Tensor:
    """``values[index]`` in ``like``'s dtype and device, shaped to broadcast over ``like``.

    Args:
        values: float64 table ``[N]`` on the CPU.
        index: int64 scalar or ``[B]`` with ``B == like.shape[0]``.
        like: ``[B, ...]``.

    Returns:
        ``[1, 1, ...]`` (scalar index) or ``[B, 1, ...]`` (``[B]`` index), with ``like.ndim`` dimensions.
    """
    if index.ndim > 1 or (index.ndim == 1 and (like.ndim == 0 or index.shape[0] != like.shape[0])):
        raise ValueError(f"timesteps must be a scalar or [B] for a [B, ...] input; got {tuple(index.shape)} "
                         f"for {tuple(like.shape)}")
    picked = values[index.cpu()].to(like.dtype).to(like.device)
    return picked.reshape(picked.shape + (1,) * (like.ndim - picked.ndim))


def _as_timesteps(timestep: int | Tensor) -> Tensor:
    """An int or integer tensor as an int64 CPU tensor (scalar or ``[B]``)."""
    if isinstance(timestep, Tensor):
        if timestep.is_floating_point() or timestep.is_complex():
            raise ValueError(f"timesteps must be integers, got dtype {timestep.dtype}")
        return timestep.detach().to("cpu", torch.int64)
    return torch.tensor(int(timestep), dtype=torch.int64)


def standard_normal(
    shape: tuple[int, ...], *, generator: torch.Generator | None, device: torch.device | str, dtype: torch.dtype
) -> Tensor:
    """Standard normal noise of ``shape`` on ``device``, drawn on the generator's own device.

    Drawing where the generator lives lets a CPU generator seed samples on any device.
    """
    source = device if generator is None else generator.device
    return torch.randn(shape, generator=generator, device=source, dtype=dtype).to(device)


def spaced_timesteps(num_train_timesteps: int, num_inference_steps: int, spacing: str) -> Tensor:
    """The kept training steps for a respaced process, as diffusers spaces them.

    Args:
        num_train_timesteps: N.
        num_inference_steps: n, with ``1 <= n <= N``.
        spacing: ``trailing`` (always keeps N - 1), ``leading`` (stride ``N // n`` from 0) or
            ``linspace`` (evenly from 0 to N - 1, rounded).

    Returns:
        int64 ``[n]``, unique, descending (the order of sampling).
    """
    if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= num_train_timesteps:
        raise ConfigError(f"num_inference_steps must be an integer in [1, {num_train_timesteps}], "
                          f"got {num_inference_steps!r}")
    n, total = num_inference_steps, num_train_timesteps
    if spacing == "trailing":
        steps = np.round(total - np.arange(n) * total / n) - 1
    elif spacing == "leading":
        steps = (np.arange(n) * (total // n))[::-1]
    elif spacing == "linspace":
        steps = np.round(np.linspace(0, total - 1, n))[::-1]
    else:
        raise ConfigError(f"timestep spacing must be one of {', '.join(TIMESTEP_SPACINGS)}; got {spacing!r}")
    return torch.from_numpy(steps.astype(np.int64).copy())


class DiffusionScheduler:
    """Gaussian diffusion with an x0-predicting denoiser: forward process, posterior, reverse steps.

    Sampling usage::

        scheduler.set_timesteps(50)
        for t in scheduler.timesteps:
            x0 = model(x, t)
            x = scheduler.step(x0, t, x, eta=0.0).prev_sample

    Attributes:
        num_train_timesteps: N, the length of the training process.
        train: the training process's tables (``[N]`` float64).
        timesteps: int64 ``[n]`` original step indices of the current respacing, descending.
        inference: the respaced process's tables (``[n]`` float64), in ascending step order.
    """

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "linear") -> None:
        """Build the training schedule and respace it to all N steps.

        Args:
            num_train_timesteps: N, the number of diffusion steps the denoiser is trained on.
            beta_schedule: ``linear`` (Ho et al., rescaled to N) or ``cosine`` (Nichol & Dhariwal,
                max beta 0.999).
        """
        if not isinstance(num_train_timesteps, int) or num_train_timesteps < 1:
            raise ConfigError(f"num_train_timesteps must be a positive integer, got {num_train_timesteps!r}")
        if beta_schedule == "linear":
            betas = linear_betas(num_train_timesteps)
        elif beta_schedule == "cosine":
            betas = cosine_betas(num_train_timesteps)
        else:
            raise ConfigError(f"beta schedule must be one of {', '.join(BETA_SCHEDULES)}; got {beta_schedule!r}")
        self.num_train_timesteps = num_train_timesteps
        self.beta_schedule = beta_schedule
        self.train = NoiseSchedule.from_alphas_cumprod(torch.cumprod(1.0 - betas, dim=0))
        self.set_timesteps(num_train_timesteps)

    def set_timesteps(self, num_inference_steps: int, spacing: str = "trailing") -> None:
        """Respace the reverse process to ``num_inference_steps`` of the training steps.

        The respaced process keeps ``alphas_cumprod`` of the kept steps and derives its betas as
        ``1 - alphas_cumprod[t_k] / alphas_cumprod[t_{k-1}]`` (guided-diffusion ``respace.py``).

        Args:
            num_inference_steps: n, ``1 <= n <= num_train_timesteps``.
            spacing: ``trailing``, ``leading`` or ``linspace`` (see ``spaced_timesteps``).
        """
        timesteps = spaced_timesteps(self.num_train_timesteps, num_inference_steps, spacing)
        kept = timesteps.flip(0)
        self.timesteps = timesteps
        self.inference = NoiseSchedule.from_alphas_cumprod(self.train.alphas_cumprod[kept])
        self._kept = kept

    def _check_train_timesteps(self, t: Tensor) -> Tensor:
        """``t`` as int64 on the CPU, refused unless every value lies in [0, N)."""
        t = _as_timesteps(t)
        if t.numel() and (t.min() < 0 or t.max() >= self.num_train_timesteps):
            raise ValueError(f"timesteps must lie in [0, {self.num_train_timesteps}), "
                             f"got values in [{int(t.min())}, {int(t.max())}]")
        return t

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Draw ``x_t ~ q(x_t | x0) = N(sqrt(abar_t) x0, (1 - abar_t) I)``.

        Args:
            x0: clean motion ``[B, ...]``.
            t: int64 training steps ``[B]`` (or a scalar for the whole batch).
            noise: standard normal ``[B, ...]`` like ``x0``.

        Returns:
            ``x_t`` ``[B, ...]``.
        """
        if noise.shape != x0.shape:
            raise ValueError(f"noise {tuple(noise.shape)} must have the shape of x0 {tuple(x0.shape)}")
        t = self._check_train_timesteps(t)
        return (_gather(self.train.sqrt_alphas_cumprod, t, x0) * x0
                + _gather(self.train.sqrt_one_minus_alphas_cumprod, t, x0) * noise)

    def q_posterior_mean_variance(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mean and variance of the training posterior ``q(x_{t-1} | x_t, x0)``.

        Args:
            x0: clean motion ``[B, ...]``.
            x_t: noisy motion at step t ``[B, ...]``.
            t: int64 training steps ``[B]`` (or a scalar).

        Returns:
            mean ``[B, ...]``, variance and clipped log-variance broadcastable to ``[B, ...]``.
        """
        if x0.shape != x_t.shape:
            raise ValueError(f"x0 {tuple(x0.shape)} and x_t {tuple(x_t.shape)} must have the same shape")
        t = self._check_train_timesteps(t)
        schedule = self.train
        mean = (_gather(schedule.posterior_mean_coef1, t, x_t) * x0
                + _gather(schedule.posterior_mean_coef2, t, x_t) * x_t)
        variance = _gather(schedule.posterior_variance, t, x_t)
        return mean, variance, _gather(schedule.posterior_log_variance_clipped, t, x_t)

    def _positions(self, timestep: int | Tensor) -> Tensor:
        """Positions in the respaced process of original steps that the respacing kept."""
        t = _as_timesteps(timestep)
        positions = torch.searchsorted(self._kept, t).clamp(max=len(self._kept) - 1)
        if not torch.equal(self._kept[positions], t):
            raise ValueError(f"timestep {t.tolist()} is not among the {len(self._kept)} steps kept by "
                             "set_timesteps")
        return positions

    def step(
        self,
        pred_x0: Tensor,
        timestep: int | Tensor,
        sample: Tensor,
        *,
        eta: float = 0.0,
        method: str = "ddim",
        generator: torch.Generator | None = None,
    ) -> SchedulerStepOutput:
        """One reverse step of the respaced process, from ``timestep`` to the previous kept step.

        ``ddpm`` draws from the respaced posterior ``q(x_prev | x_t, x0 = pred_x0)``. ``ddim``
        moves along the predicted noise with ``sigma = eta * sqrt((1 - abar_prev) / (1 - abar_t)
        * (1 - abar_t / abar_prev))``: deterministic for ``eta = 0``, the DDPM posterior for
        ``eta = 1``. The last step (to the clean data) returns ``pred_x0`` exactly.

        Args:
            pred_x0: the denoiser's clean-motion prediction ``[B, ...]``.
            timestep: original step index of ``sample``, one of ``self.timesteps``, as an int or an
                int64 scalar/``[B]`` tensor.
            sample: ``x_t`` ``[B, ...]``.
            eta: DDIM noise scale, ``>= 0`` (ignored by ``ddpm``).
            method: ``ddim`` or ``ddpm``.
            generator: random generator for the added noise (any device).

        Returns:
            ``SchedulerStepOutput(prev_sample, pred_original_sample)``.
        """
        if method not in STEP_METHODS:
            raise ConfigError(f"sampling method must be one of {', '.join(STEP_METHODS)}; got {method!r}")
        if eta < 0:
            raise ConfigError(f"eta must be >= 0, got {eta}")
        if pred_x0.shape != sample.shape:
            raise ValueError(f"pred_x0 {tuple(pred_x0.shape)} and sample {tuple(sample.shape)} "
                             "must have the same shape")
        k = self._positions(timestep)
        schedule = self.inference
        if method == "ddpm":
            mean = (_gather(schedule.posterior_mean_coef1, k, sample) * pred_x0
                    + _gather(schedule.posterior_mean_coef2, k, sample) * sample)
            std = _gather(schedule.posterior_variance.sqrt(), k, sample)
        else:
            alpha_bar = schedule.alphas_cumprod
            alpha_bar_prev = schedule.alphas_cumprod_prev
            sigma = eta * ((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).sqrt()
            # x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps
            # with eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t), written as x0_coef x0 + direction x_t.
            direction = (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt() / schedule.sqrt_one_minus_alphas_cumprod
            x0_coef = alpha_bar_prev.sqrt() - direction * schedule.sqrt_alphas_cumprod
            mean = _gather(x0_coef, k, sample) * pred_x0 + _gather(direction, k, sample) * sample
            std = _gather(sigma, k, sample)
        prev_sample = mean
        if method == "ddpm" or eta > 0:
            noise = standard_normal(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
            prev_sample = mean + std * noise
        return SchedulerStepOutput(prev_sample=prev_sample, pred_original_sample=pred_x0)

"""The sampling loop with dummy x0 models: convergence, reverse marginals, hooks, classifier-free guidance."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from mdm.diffusion import DiffusionScheduler, classifier_free_guidance, sample
from mdm.errors import ConfigError

SHAPE = (2, 6, 4, 3)  # [B, T, J, C]


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def fixed_target(shape: tuple[int, ...] = SHAPE) -> Tensor:
    return torch.linspace(-1.0, 1.0, math.prod(shape)).reshape(shape)


def test_ddpm_1000_steps_reaches_the_target_and_its_marginals_match_the_forward_process() -> None:
    """With a model that knows x0, each x_t the model sees is distributed as q(x_t | x0)."""
    scheduler = DiffusionScheduler(1000)
    shape = (4, 2048)
    target = torch.full(shape, 1.5)
    seen: dict[int, Tensor] = {}

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        if int(t[0]) in (999, 500, 100, 10):
            seen[int(t[0])] = x_t.clone()
        return target

    out = sample(model_fn, scheduler, shape, num_inference_steps=1000, method="ddpm", generator=generator(0),
                 device="cpu")
    torch.testing.assert_close(out, target)
    n = target.numel()
    assert sorted(seen) == [10, 100, 500, 999]
    for step, x_t in seen.items():  # within 4 standard errors of the closed form
        a = scheduler.train.alphas_cumprod[step].item()
        assert x_t.mean().item() == pytest.approx(math.sqrt(a) * 1.5, abs=4 * math.sqrt((1 - a) / n)), step
        assert x_t.var().item() == pytest.approx(1 - a, rel=4 * math.sqrt(2 / n)), step


def test_ddim_50_steps_follows_the_deterministic_trajectory_to_the_target() -> None:
    """DDIM with eta = 0 and an exact x0 keeps eps fixed: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps."""
    scheduler = DiffusionScheduler(1000, "cosine")
    target = fixed_target()
    init_noise = torch.randn(SHAPE, generator=generator(1))
    trajectory: list[tuple[int, Tensor]] = []

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        trajectory.append((int(t[0]), x_t.clone()))
        return target

    out = sample(model_fn, scheduler, SHAPE, num_inference_steps=50, device="cpu", init_noise=init_noise)
    torch.testing.assert_close(out, target)
    assert len(trajectory) == 50 and trajectory[0][0] == 999
    a_first = scheduler.train.alphas_cumprod[999].item()
    eps = (init_noise - math.sqrt(a_first) * target) / math.sqrt(1 - a_first)
    for step, x_t in trajectory:
        a = scheduler.train.alphas_cumprod[step].item()
        torch.testing.assert_close(x_t, math.sqrt(a) * target + math.sqrt(1 - a) * eps, atol=1e-5, rtol=1e-5)


def test_model_sees_int64_batch_timesteps_in_descending_order_and_samples_keep_shape() -> None:
    scheduler = DiffusionScheduler(100)
    calls: list[Tensor] = []

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        assert x_t.shape == SHAPE and x_t.dtype == torch.float64
        calls.append(t)
        return torch.zeros_like(x_t)

    out = sample(model_fn, scheduler, SHAPE, num_inference_steps=10, method="ddpm", generator=generator(0),
                 device="cpu", dtype=torch.float64, spacing="linspace")
    assert out.shape == SHAPE and out.dtype == torch.float64
    assert all(t.dtype == torch.int64 and t.shape == (SHAPE[0],) and len(set(t.tolist())) == 1 for t in calls)
    assert [int(t[0]) for t in calls] == scheduler.timesteps.tolist() == [99, 88, 77, 66, 55, 44, 33, 22, 11, 0]


def test_x0_guidance_is_called_once_per_step_and_its_output_is_used() -> None:
    scheduler = DiffusionScheduler(100)
    guided = fixed_target() * 3
    calls: list[int] = []

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        return torch.zeros_like(x_t)

    def guidance(x0_pred: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        assert x0_pred.shape == x_t.shape == SHAPE and t.shape == (SHAPE[0],)
        calls.append(int(t[0]))
        return guided

    out = sample(model_fn, scheduler, SHAPE, num_inference_steps=20, eta=0.5, generator=generator(0),
                 device="cpu", x0_guidance=guidance)
    assert calls == scheduler.timesteps.tolist() and len(calls) == 20
    torch.testing.assert_close(out, guided)


def test_seeds_control_stochastic_sampling_and_init_noise_controls_ddim() -> None:
    scheduler = DiffusionScheduler(100)

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        return 0.5 * x_t  # an imperfect model, so the noise matters

    def run(seed: int, **kwargs: object) -> Tensor:
        return sample(model_fn, scheduler, SHAPE, num_inference_steps=10, generator=generator(seed), device="cpu",
                      **kwargs)

    assert torch.equal(run(0, method="ddpm"), run(0, method="ddpm"))
    assert not torch.allclose(run(0, method="ddpm"), run(1, method="ddpm"))
    init_noise = torch.randn(SHAPE, generator=generator(5))
    assert torch.equal(run(0, init_noise=init_noise), run(1, init_noise=init_noise))
    with pytest.raises(ValueError, match="init_noise"):
        run(0, init_noise=torch.zeros(1, 6, 4, 3))


def test_classifier_free_guidance_closed_form() -> None:
    cond = torch.randn(SHAPE, generator=generator(0))
    uncond = torch.randn(SHAPE, generator=generator(1))
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 1.0), cond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 2.5), uncond + 2.5 * (cond - uncond))


def gaussian_denoiser(scheduler: DiffusionScheduler, mean: float, std: float):
    """The exact x0-predictor for data ``N(mean, std^2)``: ``E[x0 | x_t]``."""
    def model_fn(x: Tensor, t: Tensor) -> Tensor:
        signal = scheduler.train.sqrt_alphas_cumprod[t.cpu()].to(x)[:, None]
        noise = scheduler.train.sqrt_one_minus_alphas_cumprod[t.cpu()].to(x)[:, None]
        gain = std**2 * signal / (signal**2 * std**2 + noise**2)
        return mean + gain * (x - signal * mean)
    return model_fn


@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
def test_dpm_solver_draws_the_data_distribution_in_fewer_steps_than_ddim(beta_schedule: str) -> None:
    scheduler = DiffusionScheduler(1000, beta_schedule)
    denoiser = gaussian_denoiser(scheduler, 2.0, 0.5)

    def spread(method: str, steps: int) -> float:
        samples = sample(denoiser, scheduler, (20000, 1), num_inference_steps=steps, method=method,
                         generator=torch.Generator().manual_seed(0), device="cpu", dtype=torch.float64)
        assert samples.mean().item() == pytest.approx(2.0, abs=0.02)
        return samples.std().item()

    assert abs(spread("dpm++", 10) - 0.5) < abs(spread("ddim", 10) - 0.5)
    assert spread("dpm++", 20) == pytest.approx(0.5, rel=0.05)


def test_dpm_solver_passes_the_guided_prediction_and_unknown_methods_are_refused() -> None:
    scheduler = DiffusionScheduler(100)
    calls = []

    def guidance(x0: Tensor, x: Tensor, t: Tensor) -> Tensor:
        calls.append(int(t[0]))
        return torch.full_like(x0, 3.0)

    out = sample(lambda x, t: torch.zeros_like(x), scheduler, (4, 2), num_inference_steps=5, method="dpm++",
                 generator=torch.Generator().manual_seed(0), device="cpu", x0_guidance=guidance)
    assert len(calls) == 5 and calls == sorted(calls, reverse=True)
    torch.testing.assert_close(out, torch.full((4, 2), 3.0))  # a constant prediction is where the ODE ends
    with pytest.raises(ConfigError, match="sampling method must be one of ddim, ddpm, dpm\\+\\+"):
        sample(lambda x, t: x, scheduler, (1, 1), num_inference_steps=2, method="euler", device="cpu")

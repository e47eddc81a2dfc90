"""DiffusionScheduler against closed forms: schedules, forward marginals, posterior, respacing, steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mdm.diffusion import DiffusionScheduler, NoiseSchedule, SchedulerStepOutput
from mdm.diffusion.scheduler import spaced_timesteps
from mdm.errors import ConfigError


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_linear_schedule_endpoints_and_monotonicity() -> None:
    for steps in (1000, 100):
        scheduler = DiffusionScheduler(steps, "linear")
        betas = scheduler.train.betas
        assert betas.dtype == torch.float64 and betas.shape == (steps,)
        assert betas[0].item() == pytest.approx(1e-4 * 1000 / steps, rel=1e-12)
        assert betas[-1].item() == pytest.approx(0.02 * 1000 / steps, rel=1e-12)
        assert torch.all(betas.diff() > 0)
        alphas_cumprod = scheduler.train.alphas_cumprod
        assert torch.all(alphas_cumprod.diff() < 0) and 0 < alphas_cumprod[-1] < alphas_cumprod[0] < 1


def test_cosine_schedule_follows_alpha_bar_and_is_clipped() -> None:
    steps = 1000

    def alpha_bar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    scheduler = DiffusionScheduler(steps, "cosine")
    betas = scheduler.train.betas.numpy()
    assert betas[-1] == pytest.approx(0.999, rel=1e-12) and betas.max() <= 0.999 + 1e-12
    assert betas[0] == pytest.approx(1 - alpha_bar(1 / steps) / alpha_bar(0.0), rel=1e-9)
    assert np.all(np.diff(betas) >= 0) and betas[0] > 0
    unclipped = np.flatnonzero(betas < 0.999 - 1e-9)
    assert len(unclipped) == steps - 1
    expected = np.array([alpha_bar((t + 1) / steps) / alpha_bar(0.0) for t in unclipped])
    np.testing.assert_allclose(scheduler.train.alphas_cumprod.numpy()[unclipped], expected, rtol=1e-9)
    assert torch.all(scheduler.train.alphas_cumprod.diff() < 0)


def test_tables_are_float64() -> None:
    schedule = DiffusionScheduler(50).train
    for name, table in vars(schedule).items():
        assert table.dtype == torch.float64 and table.shape == (50,), name


def test_posterior_matches_bayes_rule() -> None:
    """q(x_{t-1} | x_t, x0) from the product of q(x_t | x_{t-1}) and q(x_{t-1} | x0), in float64."""
    scheduler = DiffusionScheduler(200, "cosine")
    betas = scheduler.train.betas.numpy()
    alphas_cumprod = np.cumprod(1 - betas)
    t = np.array([1, 7, 100, 199])
    prev = alphas_cumprod[t - 1]
    precision = (1 - betas[t]) / betas[t] + 1 / (1 - prev)
    variance = 1 / precision
    coef_x0 = variance * np.sqrt(prev) / (1 - prev)
    coef_xt = variance * np.sqrt(1 - betas[t]) / betas[t]

    rng = np.random.default_rng(0)
    x0 = torch.from_numpy(rng.normal(size=(4, 5, 3, 2)))
    x_t = torch.from_numpy(rng.normal(size=(4, 5, 3, 2)))
    mean, var, log_var = scheduler.q_posterior_mean_variance(x0, x_t, torch.from_numpy(t))
    expected_mean = coef_x0[:, None, None, None] * x0.numpy() + coef_xt[:, None, None, None] * x_t.numpy()
    np.testing.assert_allclose(mean.numpy(), expected_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(var.reshape(-1).numpy(), variance, rtol=1e-10)
    np.testing.assert_allclose(log_var.reshape(-1).numpy(), np.log(variance), rtol=1e-10)
    clipped = scheduler.train.posterior_log_variance_clipped
    assert scheduler.train.posterior_variance[0] == 0 and clipped[0] == clipped[1]


def test_q_sample_marginal_mean_and_variance() -> None:
    scheduler = DiffusionScheduler(1000)
    t = torch.tensor([0, 250, 999])
    x0 = torch.tensor([1.5, -2.0, 3.0]).reshape(3, 1).expand(3, 200_000)
    noise = torch.randn(x0.shape, generator=generator(0), dtype=torch.float64).float()
    x_t = scheduler.q_sample(x0, t, noise)
    alphas_cumprod = scheduler.train.alphas_cumprod[t].float()
    torch.testing.assert_close(x_t.mean(1), alphas_cumprod.sqrt() * x0[:, 0], atol=0.01, rtol=0)
    torch.testing.assert_close(x_t.var(1), 1 - alphas_cumprod, atol=0, rtol=0.02)


def test_q_sample_broadcasts_over_motion_and_keeps_dtype() -> None:
    scheduler = DiffusionScheduler(100)
    x0 = torch.randn(4, 6, 5, 3, generator=generator(1))
    noise = torch.randn(4, 6, 5, 3, generator=generator(2))
    t = torch.tensor([0, 10, 50, 99])
    x_t = scheduler.q_sample(x0, t, noise)
    assert x_t.shape == x0.shape and x_t.dtype == torch.float32
    for i, step in enumerate(t.tolist()):
        a = scheduler.train.alphas_cumprod[step].item()
        torch.testing.assert_close(x_t[i], math.sqrt(a) * x0[i] + math.sqrt(1 - a) * noise[i])
    assert scheduler.q_sample(x0.double(), 5, noise.double()).dtype == torch.float64


def test_q_sample_refusals() -> None:
    scheduler = DiffusionScheduler(100)
    x0 = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        scheduler.q_sample(x0, torch.tensor([0, 100]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="integers"):
        scheduler.q_sample(x0, torch.tensor([0.0, 1.0]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="shape"):
        scheduler.q_sample(x0, torch.tensor([0, 1]), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\[B\]"):
        scheduler.q_sample(x0, torch.tensor([0, 1, 2]), torch.zeros(2, 3))


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_respacing_keeps_alphas_cumprod_at_kept_steps(spacing: str) -> None:
    scheduler = DiffusionScheduler(1000, "cosine")
    for n in (1, 7, 50, 333, 999):
        scheduler.set_timesteps(n, spacing=spacing)
        timesteps = scheduler.timesteps
        assert timesteps.dtype == torch.int64 and timesteps.shape == (n,)
        assert torch.all(timesteps.diff() < 0) and timesteps.min() >= 0 and timesteps.max() <= 999
        kept = timesteps.flip(0)
        torch.testing.assert_close(scheduler.inference.alphas_cumprod, scheduler.train.alphas_cumprod[kept],
                                   rtol=1e-12, atol=0)
    assert {"trailing": 999, "leading": 0, "linspace": 0}[spacing] in spaced_timesteps(1000, 3, spacing)


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_respacing_to_all_steps_gives_the_original_betas(spacing: str) -> None:
    scheduler = DiffusionScheduler(1000)
    scheduler.set_timesteps(10, spacing=spacing)
    scheduler.set_timesteps(1000, spacing=spacing)
    torch.testing.assert_close(scheduler.timesteps, torch.arange(999, -1, -1))
    torch.testing.assert_close(scheduler.inference.betas, scheduler.train.betas, rtol=1e-9, atol=1e-15)


def test_configuration_refusals() -> None:
    with pytest.raises(ConfigError, match="beta schedule"):
        DiffusionScheduler(100, "quadratic")
    with pytest.raises(ConfigError, match="num_train_timesteps"):
        DiffusionScheduler(0)
    scheduler = DiffusionScheduler(100)
    for n in (0, 101):
        with pytest.raises(ConfigError, match=r"num_inference_steps must be an integer in \[1, 100\]"):
            scheduler.set_timesteps(n)
    with pytest.raises(ConfigError, match="spacing"):
        scheduler.set_timesteps(10, spacing="uniform")
    x = torch.zeros(2, 3)
    with pytest.raises(ConfigError, match="method"):
        scheduler.step(x, 99, x, method="euler")
    with pytest.raises(ConfigError, match="eta"):
        scheduler.step(x, 99, x, eta=-0.5)


def test_step_refuses_a_timestep_not_kept() -> None:
    scheduler = DiffusionScheduler(100)
    scheduler.set_timesteps(10)
    assert 98 not in scheduler.timesteps
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="not among the 10 steps"):
        scheduler.step(x, 98, x)


def test_ddim_eta_zero_is_deterministic_and_follows_the_closed_form() -> None:
    scheduler = DiffusionScheduler(1000)
    scheduler.set_timesteps(50)
    t, t_prev = scheduler.timesteps[10].item(), scheduler.timesteps[11].item()
    x0 = torch.randn(2, 8, 5, 3, generator=generator(0), dtype=torch.float64)
    x_t = torch.randn(2, 8, 5, 3, generator=generator(1), dtype=torch.float64)
    first = scheduler.step(x0, t, x_t, eta=0.0, generator=generator(2))
    second = scheduler.step(x0, t, x_t, eta=0.0, generator=generator(3))
    assert isinstance(first, SchedulerStepOutput) and first.pred_original_sample is x0
    assert torch.equal(first.prev_sample, second.prev_sample)
    a_t, a_prev = scheduler.train.alphas_cumprod[t].item(), scheduler.train.alphas_cumprod[t_prev].item()
    eps = (x_t - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
    torch.testing.assert_close(first.prev_sample, math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps)


def test_ddim_eta_one_is_the_ddpm_posterior_of_the_respaced_process() -> None:
    scheduler = DiffusionScheduler(1000, "cosine")
    scheduler.set_timesteps(20, spacing="leading")
    t, t_prev = scheduler.timesteps[5].item(), scheduler.timesteps[6].item()
    a_t, a_prev = scheduler.train.alphas_cumprod[t].item(), scheduler.train.alphas_cumprod[t_prev].item()
    beta = 1 - a_t / a_prev
    posterior_variance = beta * (1 - a_prev) / (1 - a_t)
    coef_x0 = beta * math.sqrt(a_prev) / (1 - a_t)
    coef_xt = (1 - a_prev) * math.sqrt(1 - beta) / (1 - a_t)

    x0 = torch.full((2, 100_000), 0.7, dtype=torch.float64)
    x_t = torch.full((2, 100_000), -0.4, dtype=torch.float64)
    ddim = scheduler.step(x0, t, x_t, eta=1.0, method="ddim", generator=generator(4)).prev_sample
    ddpm = scheduler.step(x0, t, x_t, method="ddpm", generator=generator(4)).prev_sample
    torch.testing.assert_close(ddim, ddpm, rtol=1e-10, atol=1e-12)
    assert ddim.var().item() == pytest.approx(posterior_variance, rel=0.02)
    assert ddim.mean().item() == pytest.approx(coef_x0 * 0.7 - coef_xt * 0.4,
                                               abs=4 * math.sqrt(posterior_variance / ddim.numel()))


def test_last_step_returns_the_prediction() -> None:
    scheduler = DiffusionScheduler(100)
    scheduler.set_timesteps(10)
    last = scheduler.timesteps[-1].item()
    x0 = torch.randn(3, 4, 2, 3, generator=generator(0))
    x_t = torch.randn(3, 4, 2, 3, generator=generator(1))
    for method, eta in (("ddim", 0.0), ("ddim", 1.0), ("ddpm", 0.0)):
        out = scheduler.step(x0, last, x_t, eta=eta, method=method, generator=generator(2)).prev_sample
        torch.testing.assert_close(out, x0)


def test_per_sample_timesteps_match_scalar_steps_and_keep_dtype() -> None:
    scheduler = DiffusionScheduler(100)
    scheduler.set_timesteps(25)
    steps = scheduler.timesteps[[0, 3, 24]]
    x0 = torch.randn(3, 6, 4, 3, generator=generator(0))
    x_t = torch.randn(3, 6, 4, 3, generator=generator(1))
    batched = scheduler.step(x0, steps, x_t, eta=0.0).prev_sample
    assert batched.shape == x0.shape and batched.dtype == torch.float32
    for i, step in enumerate(steps.tolist()):
        single = scheduler.step(x0[i:i + 1], step, x_t[i:i + 1], eta=0.0).prev_sample
        torch.testing.assert_close(batched[i:i + 1], single)
    assert scheduler.step(x0.double(), steps, x_t.double(), method="ddpm").prev_sample.dtype == torch.float64


def test_noise_schedule_of_one_step() -> None:
    schedule = NoiseSchedule.from_alphas_cumprod(torch.tensor([0.7], dtype=torch.float64))
    assert schedule.posterior_variance.tolist() == [0.0]
    assert schedule.posterior_mean_coef1.tolist() == pytest.approx([1.0])
    assert schedule.posterior_log_variance_clipped.tolist() == pytest.approx([math.log(0.3)])

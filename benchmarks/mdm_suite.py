"""The ``mdm`` benchmark: training-step and sampling time of the MDM denoiser on the CPU.

Timings: threads stated, warm-up runs, then medians (with min and max) of repeated
runs. The variants are timed round-robin (one run of each per repeat), so a load change on a
shared machine hits them alike and their ratios stay comparable inside one run. With
``reference`` on, a replica of the published MDM denoiser (sequence-first
``nn.TransformerEncoder``, HumanAct12's 25 x 6 input) is timed beside ours.

The results open with the headline figures (``B`` = ``train_batch``, ``S`` = ``sample_batch``,
``N`` = ``sample_steps``, ``R`` = ``reference_sample_steps``): ``denoiser_params``,
``train_step_ms_bB``, ``sample_ms_per_step_bS`` and ``sample_s_bS_stepsN`` (median DDIM run
without guidance, as ``run/mdm_sample.py`` samples by default; ``..._cfg`` with guidance), and
with ``reference`` the replica's ``published_replica_params``,
``published_replica_train_step_ms_bB``, ``published_replica_sample_s_bS_stepsR_estimate``
(its timed batch-``S`` forward times ``R``: the published sampler makes one forward per step)
and ``ratio_ours_to_published``; the detailed timings (min, max, every run, CPU time) follow.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mdm.diffusion.sampling import sample
from mdm.diffusion.scheduler import DiffusionScheduler
from mdm.models import MotionDenoiser, count_parameters, denoiser_preset, sinusoidal_embedding
from mdm.training.loop import check_mixed_precision


@dataclass
class SuiteConfig:
    """Options of the denoiser suite.

    Attributes:
        preset: denoiser preset (``tiny``, ``cpu``, ``paper``).
        num_joints, num_channels, num_classes: data shape (HumanAct12: 24 joints x 6D, 12 classes).
        frames: clip length ``T``.
        train_batch: batch of the training step (forward, backward, AdamW step).
        sample_batch: clips per sampling run; the guided forward runs twice this batch.
        sample_steps: DDIM steps of the timed sampling run.
        threads: ``torch.set_num_threads``.
        warmup: untimed runs of each variant first.
        repeats: timed runs of each variant.
        fused_adamw: use AdamW's fused CPU kernel for our model.
        compile: also time ``torch.compile`` of our model (long compile on a small CPU).
        reference: also time the published-MDM replica.
        sampling: also time full DDIM sampling runs (``sample_steps`` model calls each).
        reference_sample_steps: sampling steps of the published code (MDM samples with all
            1000 diffusion steps), for the replica's sampling-time estimate.
        mixed_precision: precision of our training step: ``no`` (fp32), or ``bf16`` / ``fp16``
            under the CPU's ``torch.autocast``, as ``MDMTrainConfig.mixed_precision`` trains. The
            replica's step is timed as published, in fp32, and then also under the same autocast
            (``published_replica_train_step_ms_bB_autocast``), for a like-for-like ratio.
    """

    preset: str = "paper"
    num_joints: int = 24
    num_channels: int = 6
    num_classes: int = 12
    frames: int = 60
    train_batch: int = 64
    sample_batch: int = 16
    sample_steps: int = 50
    threads: int = 2
    warmup: int = 2
    repeats: int = 5
    fused_adamw: bool = True
    compile: bool = False
    reference: bool = True
    sampling: bool = True
    reference_sample_steps: int = 1000
    mixed_precision: str = "no"

    def __post_init__(self) -> None:
        check_mixed_precision(self.mixed_precision)


class PublishedMDMReplica(nn.Module):
    """The published MDM transformer denoiser, layer for layer, for timing only.

    Sequence-first ``nn.TransformerEncoder`` (post-norm, GELU), input ``[B, J, C, T]`` with
    HumanAct12's J = 25 (24 joints and the root translation), zero null condition.
    """

    def __init__(self, joints: int, channels: int, classes: int, d_model: int, layers: int, heads: int,
                 ff_dim: int, dropout: float, cond_drop_prob: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.cond_drop_prob = cond_drop_prob
        self.input_proj = nn.Linear(joints * channels, d_model)
        self.register_buffer("pe", sinusoidal_embedding(torch.arange(5000), d_model)[:, None])
        self.dropout = nn.Dropout(dropout)
        self.time_mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.action_embedding = nn.Parameter(torch.randn(classes, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, ff_dim, dropout, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.output_proj = nn.Linear(d_model, joints * channels)

    def forward(self, x: Tensor, timesteps: Tensor, labels: Tensor) -> Tensor:
        """``[B, J, C, T]`` -> ``[B, J, C, T]``."""
        batch, joints, channels, frames = x.shape
        emb = self.time_mlp(self.pe[timesteps]).permute(1, 0, 2)
        action = self.action_embedding[labels]
        if self.training and self.cond_drop_prob > 0:
            action = action * (1.0 - torch.bernoulli(torch.full((batch, 1), self.cond_drop_prob)))
        emb = emb + action
        tokens = self.input_proj(x.permute(3, 0, 1, 2).reshape(frames, batch, joints * channels))
        seq = self.dropout(torch.cat([emb, tokens]) + self.pe[: frames + 1])
        out = self.output_proj(self.encoder(seq)[1:])
        return out.reshape(frames, batch, joints, channels).permute(1, 2, 3, 0)


def _summary(wall: list[float], cpu: list[float]) -> dict[str, float | list[float]]:
    return {"median_s": statistics.median(wall), "min_s": min(wall), "max_s": max(wall),
            "all_s": [round(t, 4) for t in wall], "median_process_cpu_s": statistics.median(cpu)}


def _time_round_robin(jobs: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, dict]:
    """Time each job ``repeats`` times, one run of each per round, after ``warmup`` rounds.

    Records wall time and the process's CPU time: on a shared machine the wall time grows
    with other people's load, while the CPU time (with ``OMP_WAIT_POLICY=PASSIVE``, so that
    waiting threads sleep) stays close to the work done.
    """
    for _ in range(warmup):
        for job in jobs.values():
            job()
    wall: dict[str, list[float]] = {name: [] for name in jobs}
    cpu: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            job()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: _summary(wall[name], cpu[name]) for name in jobs}


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, args: tuple[Tensor, ...],
                target: Tensor) -> Callable[[], None]:
    def step() -> None:
        loss = (model(*args) - target).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def cpu_autocast(job: Callable[[], object], precision: str) -> Callable[[], None]:
    """``job`` under the CPU's ``torch.autocast`` to ``precision`` (``bf16`` or ``fp16``)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16

    def run() -> None:
        with torch.autocast("cpu", dtype=dtype):
            job()
    return run


def _inference(fn: Callable[[], Tensor]) -> Callable[[], Tensor]:
    def run() -> Tensor:
        with torch.inference_mode():
            return fn()
    return run


def run_suite(config: SuiteConfig) -> dict[str, object]:
    """Time the training step, single sampling forwards and a full DDIM sampling run."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(0)
    denoiser_config = denoiser_preset(config.preset, num_joints=config.num_joints,
                                      num_channels=config.num_channels, num_classes=config.num_classes,
                                      max_frames=max(config.frames, 196))
    model = MotionDenoiser(denoiser_config)
    generator = torch.Generator().manual_seed(1)
    batch, frames = config.train_batch, config.frames
    x = torch.randn(batch, frames, config.num_joints, config.num_channels, generator=generator)
    t = torch.randint(0, 1000, (batch,), generator=generator)
    y = torch.randint(0, config.num_classes, (batch,), generator=generator)

    models: dict[str, nn.Module] = {"ours": model}
    if config.compile:
        models["ours_compiled"] = torch.compile(model)
    train_jobs = {}
    for name, module in models.items():
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=config.fused_adamw)
        train_jobs[name] = _train_step(module.train(), optimizer, (x, t, y), x)
        if config.mixed_precision != "no":
            train_jobs[name] = cpu_autocast(train_jobs[name], config.mixed_precision)
    reference = None
    if config.reference:
        reference = PublishedMDMReplica(
            config.num_joints + 1, config.num_channels, config.num_classes, denoiser_config.d_model,
            denoiser_config.num_layers, denoiser_config.num_heads, denoiser_config.ff_dim,
            denoiser_config.dropout, denoiser_config.cond_drop_prob,
        )
        x_ref = torch.randn(batch, config.num_joints + 1, config.num_channels, frames, generator=generator)
        optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-4)
        train_jobs["published_replica"] = _train_step(reference.train(), optimizer, (x_ref, t, y), x_ref)
        if config.mixed_precision != "no":
            train_jobs["published_replica_autocast"] = cpu_autocast(train_jobs["published_replica"],
                                                                    config.mixed_precision)
    train = _time_round_robin(train_jobs, config.warmup, config.repeats)

    for module in (*models.values(), reference):
        if module is not None:
            module.eval()
    sb = config.sample_batch
    xs, ts, ys = x[:sb], t[:sb], y[:sb]
    forward_jobs: dict[str, Callable[[], object]] = {}
    for name, module in models.items():
        forward_jobs[f"{name}_batch{sb}"] = _inference(lambda m=module: m(xs, ts, ys))
        forward_jobs[f"{name}_cfg_batch{2 * sb}"] = _inference(
            lambda m=module: m.forward_with_cfg(xs, ts, ys, 2.5))
    if reference is not None:
        xs_ref = x_ref[:sb]
        forward_jobs[f"published_replica_batch{sb}"] = _inference(lambda: reference(xs_ref, ts, ys))
    forward = _time_round_robin(forward_jobs, config.warmup, config.repeats)

    results: dict[str, object] = {
        "denoiser_params": count_parameters(model),
        f"train_step_ms_b{batch}": _ms(train["ours"]),
    }
    sampling = _time_sampling(model, config, ys) if config.sampling else None
    if sampling is not None:
        steps = config.sample_steps
        results[f"sample_ms_per_step_b{sb}"] = _figure(1000.0 * sampling["no_cfg"]["median_s"] / steps)
        results[f"sample_s_b{sb}_steps{steps}"] = _figure(sampling["no_cfg"]["median_s"])
        results[f"sample_s_b{sb}_steps{steps}_cfg"] = _figure(sampling["cfg"]["median_s"])
    if reference is not None:
        results.update(_published_figures(config, results, reference, train, forward))
    results.update({
        "threads": config.threads,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "train_step": train,
        "forward": forward,
    })
    if sampling is not None:
        results[f"sampling_{config.sample_steps}_steps_{sb}_clips"] = sampling
    return results


def _figure(value: float) -> float:
    """A headline figure, to 4 significant digits."""
    return float(f"{value:.4g}")


def _ms(summary: dict) -> float:
    """The median of a :func:`_summary`, in milliseconds."""
    return _figure(1000.0 * summary["median_s"])


def _published_figures(config: SuiteConfig, ours: dict[str, object], reference: nn.Module,
                       train: dict[str, dict], forward: dict[str, dict]) -> dict[str, object]:
    """The replica's headline figures and the ratios ours / published (below 1: ours is faster or smaller)."""
    batch, sb = config.train_batch, config.sample_batch
    steps, reference_steps = config.sample_steps, config.reference_sample_steps
    reference_forward = forward[f"published_replica_batch{sb}"]["median_s"]
    estimate_key = f"published_replica_sample_s_b{sb}_steps{reference_steps}_estimate"
    published: dict[str, object] = {
        "published_replica_params": count_parameters(reference),
        f"published_replica_train_step_ms_b{batch}": _ms(train["published_replica"]),
        f"published_replica_forward_ms_b{sb}": _figure(1000.0 * reference_forward),
        estimate_key: _figure(reference_steps * reference_forward),
    }
    ratios = {
        "params": _figure(ours["denoiser_params"] / published["published_replica_params"]),
        f"train_step_ms_b{batch}": _figure(train["ours"]["median_s"] / train["published_replica"]["median_s"]),
        f"forward_ms_b{sb}": _figure(forward[f"ours_batch{sb}"]["median_s"] / reference_forward),
    }
    if "published_replica_autocast" in train:
        published[f"published_replica_train_step_ms_b{batch}_autocast"] = _ms(train["published_replica_autocast"])
        ratios[f"train_step_ms_b{batch}_autocast"] = _figure(
            train["ours"]["median_s"] / train["published_replica_autocast"]["median_s"])
    sample_key = f"sample_s_b{sb}_steps{steps}"
    if sample_key in ours:
        ratios[f"{sample_key}_to_{estimate_key}"] = _figure(ours[sample_key] / published[estimate_key])
    published["ratio_ours_to_published"] = ratios
    return published


def _time_sampling(model: MotionDenoiser, config: SuiteConfig, labels: Tensor) -> dict[str, dict]:
    """Full DDIM runs (cosine schedule, 1000 training steps) without and with guidance."""
    scheduler = DiffusionScheduler(1000, "cosine")
    shape = (len(labels), config.frames, config.num_joints, config.num_channels)

    def sampling_run(guidance: float | None) -> Callable[[], Tensor]:
        def model_fn(x_t: Tensor, timesteps: Tensor) -> Tensor:
            if guidance is None:
                return model(x_t, timesteps, labels)
            return model.forward_with_cfg(x_t, timesteps, labels, guidance)
        return _inference(lambda: sample(model_fn, scheduler, shape, num_inference_steps=config.sample_steps,
                                         generator=torch.Generator().manual_seed(2), device="cpu"))

    # The model is warm from the forward timings; full sampling runs are long, so fewer of them.
    return _time_round_robin({"no_cfg": sampling_run(None), "cfg": sampling_run(2.5)},
                             0, max(1, math.ceil(config.repeats / 2)))

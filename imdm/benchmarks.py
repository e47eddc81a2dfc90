"""The ``imdm`` benchmark: recognizer inference and training-step time, triplet-loss time, on the CPU.

Follows PROTOCOL.md: threads stated, warm-up runs, then medians (with min and max) of repeated
runs. All jobs of a group are timed round-robin (one run of each per repeat), so a load
change on a shared machine hits them alike and their ratios stay comparable inside one run.
With ``reference`` on, a replica of the published recognizer (``I_MDM_SkateTrans``, at its
published input: 2 persons x 25 joints x 6 features) is timed beside ours.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imdm.models.recognizer import Recognizer, count_parameters, recognizer_preset
from imdm.triplet import batch_hard_triplet_loss
from mdm.skeleton import load_skeleton


@dataclass
class SuiteConfig:
    """Options of the imdm suite.

    Attributes:
        presets: recognizer presets to time.
        skeleton: built-in skeleton giving ``J`` and the parents (NW-UCLA: kinect_v1).
        num_classes: ``K`` (NW-UCLA: 10).
        frames: clip length; 0 = each preset's own ``num_frames``.
        batches: inference batch sizes; figures are per clip.
        train_batch: batch of one training step (forward, cross-entropy, backward, AdamW).
        threads: ``torch.set_num_threads``.
        warmup: untimed rounds first.
        repeats: timed rounds.
        clips_per_run: at least this many clips per timed run (batch 1 runs several forwards).
        reference: also time the published-recognizer replica.
        triplet_batch, triplet_dim: shape of the timed triplet loss.
    """

    presets: tuple[str, ...] = ("default", "paper")
    skeleton: str = "kinect_v1"
    num_classes: int = 10
    frames: int = 0
    batches: tuple[int, ...] = (1, 64)
    train_batch: int = 64
    threads: int = 2
    warmup: int = 2
    repeats: int = 7
    clips_per_run: int = 16
    reference: bool = True
    triplet_batch: int = 512
    triplet_dim: int = 1024


class PublishedRecognizerReplica(nn.Module):
    """The published ``I_MDM_SkateTrans`` computation, for timing only (not for training).

    Per frame the ``P = persons * joints * feats`` values go through an MLP stem (P -> 2P ->
    3P -> d); 4 stages of widths d, 2d, 2d, 2d each run the "GT module" (a quarter of the
    channels through a graph einsum against a ``[2J, 2J]`` matrix broadcast over a joint axis of
    size 1 then averaged, a quarter through a (3, 1) convolution, half unchanged) and 2
    ``nn.TransformerEncoderLayer`` (ReLU, batch first); between stages a Conv1d (kernel 7,
    stride 2) with BatchNorm; mean over time, linear classifier. Input ``[B, T, P]``.
    """

    def __init__(self, per_frame: int, graph_nodes: int, num_classes: int, d_model: int = 512, heads: int = 8,
                 ff: int = 256, layers: int = 2, frames: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(per_frame, 2 * per_frame), nn.GELU(),
                                  nn.Linear(2 * per_frame, 3 * per_frame), nn.GELU(),
                                  nn.Linear(3 * per_frame, d_model))
        position = torch.arange(frames, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        time_embedding = torch.zeros(frames, d_model)
        time_embedding[:, 0::2], time_embedding[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.register_buffer("time_embedding", time_embedding)
        widths = (d_model, 2 * d_model, 2 * d_model, 2 * d_model)
        self.graphs = nn.ParameterList([nn.Parameter(0.02 * torch.randn(graph_nodes, graph_nodes)) for _ in widths])
        self.tconvs = nn.ModuleList([nn.Conv2d(w // 4, w // 4, (3, 1), padding=(1, 0), bias=False) for w in widths])
        self.encoders = nn.ModuleList([
            nn.TransformerEncoder(nn.TransformerEncoderLayer(w, heads, ff, 0.1, batch_first=True), layers,
                                  enable_nested_tensor=False)
            for w in widths
        ])
        self.downsamples = nn.ModuleList([
            nn.ModuleDict({"conv": nn.Conv1d(a, b, 7, stride=2, padding=3), "norm": nn.BatchNorm1d(b)})
            for a, b in zip(widths[:-1], widths[1:])
        ])
        self.classifier = nn.Linear(widths[-1], num_classes)

    def _gt_module(self, x: Tensor, stage: int) -> Tensor:
        channels = x.shape[-1]
        x4 = x.permute(0, 2, 1).unsqueeze(-1)
        xg, xc, xt = torch.split(x4, [channels // 4, channels // 2, channels // 4], dim=1)
        graph = torch.einsum("bctu,uv->bctv", xg, self.graphs[stage]).mean(dim=3, keepdim=True)
        out = torch.cat([graph + xg, xc, self.tconvs[stage](xt) + xt], dim=1)
        return out.squeeze(-1).permute(0, 2, 1).contiguous()

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T, P]`` -> logits ``[B, K]``."""
        h = self.stem(x) + self.time_embedding[: x.shape[1]]
        for stage, encoder in enumerate(self.encoders):
            if stage > 0:
                down = self.downsamples[stage - 1]
                h = down["norm"](down["conv"](h.permute(0, 2, 1))).permute(0, 2, 1)
            h = encoder(self._gt_module(h, stage))
        return self.classifier(h.mean(dim=1))


def _summary(seconds: list[float], scale: float) -> dict[str, float]:
    """Median, min and max of ``seconds * scale`` (e.g. ms per clip)."""
    values = [s * scale for s in seconds]
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def _time_round_robin(jobs: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of each job's runs, one run of each per round, after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for job in jobs.values():
            job()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return times


def _inference(model: nn.Module, x: Tensor, runs: int) -> Callable[[], None]:
    def job() -> None:
        with torch.inference_mode():
            for _ in range(runs):
                model(x)
    return job


def _train_step(model: nn.Module, x: Tensor, labels: Tensor, logits: Callable[[object], Tensor]) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def job() -> None:
        loss = F.cross_entropy(logits(model(x)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return job


def run_suite(config: SuiteConfig) -> dict[str, object]:
    """Time recognizer inference (ms per clip), one training step (s) and the triplet loss (ms)."""
    torch.set_num_threads(config.threads)
    skeleton = load_skeleton(config.skeleton)
    generator = torch.Generator().manual_seed(0)
    models: dict[str, tuple[nn.Module, Callable[[int], Tensor], Callable[[object], Tensor]]] = {}
    report: dict[str, object] = {"threads": config.threads, "torch": torch.__version__,
                                 "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                                 "load_average_1min_before": os.getloadavg()[0], "models": {}}
    for preset in config.presets:
        overrides: dict[str, object] = {"num_joints": skeleton.num_joints, "parents": skeleton.parents,
                                        "num_classes": config.num_classes}
        if config.frames:
            overrides["num_frames"] = config.frames
        model_config = recognizer_preset(preset, **overrides)
        torch.manual_seed(0)
        model = Recognizer(model_config)
        shape = (model_config.num_frames, skeleton.num_joints, model_config.in_channels)
        models[preset] = (model, lambda b, s=shape: torch.randn((b,) + s, generator=generator), lambda out: out.logits)
        report["models"][preset] = {"parameters": count_parameters(model), "frames": model_config.num_frames,
                                    "feature_dims": list(model.feature_dims),
                                    "feature_frames": list(model.feature_frames)}
    if config.reference:
        frames = config.frames or 64
        torch.manual_seed(0)
        replica = PublishedRecognizerReplica(per_frame=2 * 25 * 6, graph_nodes=2 * 25, num_classes=config.num_classes,
                                             frames=frames)
        models["published_replica"] = (replica, lambda b: torch.randn(b, frames, 2 * 25 * 6, generator=generator),
                                       lambda out: out)
        report["models"]["published_replica"] = {"parameters": count_parameters(replica), "frames": frames}

    labels = torch.randint(0, config.num_classes, (config.train_batch,), generator=generator)
    train_jobs = {name: _train_step(model.train(), make(config.train_batch), labels, logits)
                  for name, (model, make, logits) in models.items()}
    train_times = _time_round_robin(train_jobs, 1, max(1, config.repeats // 2))

    inference_jobs, clips = {}, {}
    for name, (model, make, _) in models.items():
        model.eval()
        for batch in config.batches:
            runs = max(1, math.ceil(config.clips_per_run / batch))
            inference_jobs[f"{name}_batch{batch}"] = _inference(model, make(batch), runs)
            clips[f"{name}_batch{batch}"] = runs * batch
    inference_times = _time_round_robin(inference_jobs, config.warmup, config.repeats)
    for name in models:
        entry = report["models"][name]
        entry["ms_per_clip"] = {str(batch): _summary(inference_times[f"{name}_batch{batch}"],
                                                     1000.0 / clips[f"{name}_batch{batch}"])
                                for batch in config.batches}
        entry[f"train_step_s_batch{config.train_batch}"] = _summary(train_times[name], 1.0)

    features = torch.randn(config.triplet_batch, config.triplet_dim, generator=generator)
    triplet_labels = torch.randint(0, config.num_classes, (config.triplet_batch,), generator=generator)
    trainable = features.clone().requires_grad_()

    def triplet_forward() -> None:
        with torch.no_grad():
            batch_hard_triplet_loss(features, triplet_labels, 0.3, generator=generator)

    def triplet_backward() -> None:
        batch_hard_triplet_loss(trainable, triplet_labels, 0.3, generator=generator)[0].backward()

    triplet_times = _time_round_robin({"forward": triplet_forward, "forward_backward": triplet_backward},
                                      config.warmup, 3 * config.repeats)
    report["triplet_ms"] = {"batch": config.triplet_batch, "dim": config.triplet_dim,
                            **{name: _summary(values, 1000.0) for name, values in triplet_times.items()}}
    report["load_average_1min_after"] = os.getloadavg()[0]
    return report

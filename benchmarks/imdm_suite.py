"""The ``imdm`` benchmark: recognizer inference, training steps and the triplet loss on the CPU; the
co-training step on the device Accelerate picks (the GPU where there is one).

Timings: threads stated, warm-up runs, then medians (with min and max) of repeated
runs. All jobs of a group are timed round-robin (one run of each per repeat), so a load
change on a shared machine hits them alike and their ratios stay comparable inside one run.
With ``reference`` on, a replica of the published recognizer (``I_MDM_SkateTrans``, at its
published input: 2 persons x 25 joints x 6 features) is timed beside ours, and for the
co-training step the published pair: its training step followed by that of the published-MDM
replica (:class:`benchmarks.mdm_suite.PublishedMDMReplica`, HumanAct12's 25 x 6 input),
each with its own AdamW; the published code's feature injection crashes on mismatched shapes,
so the pair runs without it.

Results: one entry per recognizer preset and one ``published_replica``, each with
``recognizer_params``, ``infer_ms_per_clip_bN`` (per clip, for each ``N`` in ``batches``),
``train_step_ms_bB`` and ``cotrain_step_ms_bB`` (``B`` = ``train_batch``; medians) and
``spread`` (min, max and number of runs of each timing); each preset also has
``ratio_to_published`` (ours / published: below 1 is faster or smaller) and ``ensemble``
(:func:`ensemble_inference`: a four-stream ensemble's prediction against one stream's). Then
``triplet_ms_bN_dD`` (batch-hard mining and loss without gradient; ``triplet_backward_ms_bN_dD``
with the backward pass) and the machine's load.

The co-training step is :meth:`imdm.training.cotrain.CoTrainer.train_step` (cross-entropy,
triplet loss and feature-conditioned diffusion loss, one backward, both optimizers, EMA
updates) at the recognizer preset paired with the denoiser preset of :data:`DENOISER_FOR_PRESET`,
on one batch of the built-in procedural dataset (:mod:`mdm.data.procedural`, Kinect v1, 12
classes), generated in memory.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.mdm_suite import PublishedMDMReplica, cpu_autocast
from imdm.bundle import RecognizerSpec, TrainedRecognizer
from imdm.ensemble import TEST_TURNS, EnsembleSpec, TrainedEnsemble
from imdm.models.recognizer import Recognizer, recognizer_preset
from imdm.onnx_export import export_onnx, graph_of, prepared_clips
from imdm.training.cotrain import CoTrainConfig, CoTrainer
from imdm.triplet import batch_hard_triplet_loss
from mdm.config import merge
from mdm.data.dataset import MotionDataset
from mdm.data.procedural import generate_procedural_dataset
from mdm.data.streams import STREAM_CODES, stream_name
from mdm.data.transforms import recognition_pipeline
from mdm.models import count_parameters, denoiser_preset
from mdm.skeleton import load_skeleton

DENOISER_FOR_PRESET: dict[str, str] = {"tiny": "tiny", "default": "cpu", "paper": "paper"}
"""Recognizer preset -> the denoiser preset co-trained with it in the timed co-training step."""


@dataclass
class SuiteConfig:
    """Options of the imdm suite.

    Attributes:
        presets: recognizer presets to time.
        skeleton: built-in skeleton giving ``J`` and the parents (NW-UCLA: kinect_v1).
        num_classes: ``K`` (NW-UCLA: 10).
        frames: clip length; 0 = each preset's own ``num_frames`` (and 64 for the published
            recognizer, 60 for the published MDM).
        batches: inference batch sizes; figures are per clip.
        train_batch: batch of one training step (forward, cross-entropy, backward, AdamW) and of
            one co-training step.
        threads: ``torch.set_num_threads``.
        warmup: untimed rounds first.
        repeats: timed rounds (half as many, at least one, for training and co-training steps).
        clips_per_run: at least this many clips per timed run (batch 1 runs several forwards).
        reference: also time the published-recognizer replica (and the published co-training pair).
        cotrain: also time the co-training step (on the device Accelerate picks: named in
            ``cotrain_setup``).
        triplet_batch, triplet_dim: shape of the timed triplet loss.
        recognizer_overrides: recognizer options replaced in every timed preset, for timing a
            recipe's recognizer (its ``recognizer.overrides``, e.g. ``{joint_stages: 2, ...}``).
        mixed_precision: precision of our co-training step (``CoTrainConfig.mixed_precision``:
            ``no``, ``bf16`` or ``fp16``). The published pair is timed as published, in fp32, and
            with ``bf16`` or ``fp16`` also under the same autocast
            (``cotrain_step_ms_bB_autocast``), for a like-for-like ratio. The ensemble's and its
            stream's predictions also run in it.
        ensemble: also time a four-stream ensemble's end-to-end prediction (clip pipeline
            included) against one stream's, at each of ``batches`` (:func:`ensemble_inference`).
        onnx: also time the recognizer's ONNX graph under onnxruntime against its PyTorch graph on
            prepared clips, at each of ``batches`` (:func:`onnx_inference`; needs onnx, onnxscript
            and onnxruntime).
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
    cotrain: bool = True
    triplet_batch: int = 512
    triplet_dim: int = 1024
    recognizer_overrides: dict[str, Any] = field(default_factory=dict)
    mixed_precision: str = "no"
    ensemble: bool = True
    onnx: bool = True


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


def _figure(value: float) -> float:
    """A headline figure, to 4 significant digits."""
    return float(f"{value:.4g}")


def _time_round_robin(jobs: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of each job's runs, one run of each per round, after ``warmup`` untimed rounds (with CUDA
    present each run ends with a synchronisation, so queued GPU work is counted in its run)."""
    synchronize = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        for job in jobs.values():
            job()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            synchronize()
            start = time.perf_counter()
            job()
            synchronize()
            times[name].append(time.perf_counter() - start)
    return times


def _record(entry: dict[str, object], key: str, seconds: list[float], scale: float) -> None:
    """Store the median of ``seconds * scale`` as ``entry[key]`` and its min, max and runs in ``entry["spread"]``."""
    values = [s * scale for s in seconds]
    entry[key] = _figure(statistics.median(values))
    entry.setdefault("spread", {})[key] = {"min": _figure(min(values)), "max": _figure(max(values)),
                                           "runs": len(values)}


def _inference(model: nn.Module, x: Tensor, runs: int) -> Callable[[], None]:
    def job() -> None:
        with torch.inference_mode():
            for _ in range(runs):
                model(x)
    return job


def _train_step(model: nn.Module, inputs: tuple[Tensor, ...],
                loss_of: Callable[[object], Tensor]) -> Callable[[], None]:
    """One AdamW step of ``model`` on ``loss_of(model(*inputs))``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def job() -> None:
        loss = loss_of(model(*inputs))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return job


def _cotrain_step(preset: str, config: SuiteConfig, frames: int, dataset: MotionDataset,
                  output_dir: Path) -> tuple[Callable[[], None], dict]:
    """The co-training step of recognizer ``preset`` (with the suite's overrides and precision) and its
    denoiser on one fixed batch, and what it trains."""
    config = merge(CoTrainConfig(), {"pipeline": {"num_frames": frames},
                                     "recognizer": {"preset": preset, "overrides": config.recognizer_overrides},
                                     "generator": {"preset": DENOISER_FOR_PRESET[preset]},
                                     "batch_size": config.train_batch, "mixed_precision": config.mixed_precision,
                                     "render_samples": False}, "imdm benchmark co-training step")
    trainer = CoTrainer(config, output_dir, progress=False, dataset=dataset)
    batch = next(iter(trainer.train_loader))
    about = {"recognizer_params": count_parameters(trainer.accelerator.unwrap_model(trainer.recognizer.model)),
             "denoiser_preset": DENOISER_FOR_PRESET[preset],
             "denoiser_params": count_parameters(trainer.accelerator.unwrap_model(trainer.denoiser.model)),
             "frames": frames, "data": dataset.source, "device": str(trainer.accelerator.device),
             "mixed_precision": trainer.accelerator.mixed_precision}
    return lambda: trainer.train_step(batch), about


def _published_denoiser_step(config: SuiteConfig, generator: torch.Generator) -> Callable[[], None]:
    """Training step of the published-MDM replica (HumanAct12: 25 x 6 input, 60 frames) at ``train_batch``."""
    paper = denoiser_preset("paper", num_joints=24, num_channels=6, num_classes=config.num_classes)
    replica = PublishedMDMReplica(25, 6, config.num_classes, paper.d_model, paper.num_layers, paper.num_heads,
                                  paper.ff_dim, paper.dropout, paper.cond_drop_prob).train()
    batch = config.train_batch
    x = torch.randn(batch, 25, 6, config.frames or 60, generator=generator)
    t = torch.randint(0, 1000, (batch,), generator=generator)
    y = torch.randint(0, config.num_classes, (batch,), generator=generator)
    return _train_step(replica, (x, t, y), lambda out: (out - x).square().mean())


def ensemble_inference(preset: str, config: SuiteConfig, frames: int, dataset: MotionDataset) -> dict[str, object]:
    """ms per clip of ``TrainedEnsemble.predict`` (joint, bone, joint-motion and bone-motion members of
    ``preset``, untrained; with the test-time turns, and ``ensemble_alone`` without them) and of the joint
    member's own ``TrainedRecognizer.predict`` on ``dataset``, clip pipeline included, at each of
    ``config.batches``, all in ``config.mixed_precision``; ``ensemble_over_stream`` and
    ``ensemble_alone_over_stream`` are the ratios."""
    pipeline = replace(recognition_pipeline(), num_frames=frames)
    members = []
    for code in STREAM_CODES:
        torch.manual_seed(0)
        model_config = recognizer_preset(preset, num_joints=dataset.skeleton.num_joints,
                                         parents=dataset.skeleton.parents, num_classes=len(dataset.class_names),
                                         num_frames=frames, streams=(stream_name(code),),
                                         **config.recognizer_overrides)
        spec = RecognizerSpec(model_config, pipeline, list(dataset.class_names))
        members.append(TrainedRecognizer(spec, Recognizer(model_config)))
    ensemble = TrainedEnsemble(EnsembleSpec(streams=list(STREAM_CODES), folders=list(STREAM_CODES),
                                            weights=[1.0] * len(members), class_names=list(dataset.class_names),
                                            turns=list(TEST_TURNS), up_axis=dataset.skeleton.up_axis), members)
    ensemble_alone = TrainedEnsemble(replace(ensemble.spec, turns=[0.0]), members)
    jobs, clips = {}, {}
    for batch in config.batches:
        count = max(batch, config.clips_per_run)
        subset = dataset.subset(np.arange(count) % len(dataset))
        for name, classifier in (("ensemble", ensemble), ("ensemble_alone", ensemble_alone), ("stream", members[0])):
            jobs[(name, batch)] = lambda c=classifier, s=subset, b=batch: c.predict(
                s, batch_size=b, mixed_precision=config.mixed_precision)
        clips[batch] = count
    entry: dict[str, object] = {"streams": list(STREAM_CODES), "frames": frames,
                                "mixed_precision": config.mixed_precision}
    for (name, batch), seconds in _time_round_robin(jobs, config.warmup, config.repeats).items():
        _record(entry, f"{name}_ms_per_clip_b{batch}", seconds, 1000.0 / clips[batch])
    for name in ("ensemble", "ensemble_alone"):
        entry[f"{name}_over_stream"] = {f"b{b}": _figure(entry[f"{name}_ms_per_clip_b{b}"] /
                                                         entry[f"stream_ms_per_clip_b{b}"]) for b in config.batches}
    return entry


def onnx_inference(preset: str, config: SuiteConfig, frames: int, dataset: MotionDataset) -> dict[str, object]:
    """ms per clip of recognizer ``preset`` (untrained, class probabilities) as an ONNX graph under
    onnxruntime (``config.threads`` threads) and as its PyTorch graph, on prepared clips of ``dataset``
    (the clip pipeline not timed), at each of ``config.batches``; and the largest difference of their
    probabilities."""
    import onnxruntime  # only this measurement needs it

    pipeline = replace(recognition_pipeline(), num_frames=frames)
    torch.manual_seed(0)
    model_config = recognizer_preset(preset, num_joints=dataset.skeleton.num_joints, parents=dataset.skeleton.parents,
                                     num_classes=len(dataset.class_names), num_frames=frames,
                                     **config.recognizer_overrides)
    recognizer = TrainedRecognizer(RecognizerSpec(model_config, pipeline, list(dataset.class_names)),
                                   Recognizer(model_config))
    clips = prepared_clips(dataset, pipeline)
    graph = graph_of(recognizer)[0]
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(recognizer, Path(folder) / "recognizer.onnx", clips)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = config.threads
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    jobs, counts = {}, {}
    for batch in config.batches:
        x = clips[np.arange(batch) % len(clips)]
        runs = max(1, math.ceil(config.clips_per_run / batch))
        jobs[("onnxruntime", batch)] = lambda x=x, r=runs: [session.run(None, {"motion": x}) for _ in range(r)]
        jobs[("pytorch", batch)] = _inference(graph, torch.as_tensor(x), runs)
        counts[batch] = runs * batch
    entry: dict[str, object] = {"frames": frames}
    for (name, batch), seconds in _time_round_robin(jobs, config.warmup, config.repeats).items():
        _record(entry, f"{name}_ms_per_clip_b{batch}", seconds, 1000.0 / counts[batch])
    with torch.inference_mode():
        reference = graph(torch.as_tensor(clips)).numpy()
    entry["max_abs_difference"] = float(np.abs(session.run(None, {"motion": clips})[0] - reference).max())
    return entry


def run_suite(config: SuiteConfig) -> dict[str, object]:
    """Time recognizer inference (ms per clip), training and co-training steps (ms) and the triplet loss (ms)."""
    torch.set_num_threads(config.threads)
    skeleton = load_skeleton(config.skeleton)
    generator = torch.Generator().manual_seed(0)
    models: dict[str, tuple[nn.Module, Callable[[int], Tensor], Callable[[object], Tensor]]] = {}
    figures: dict[str, dict[str, object]] = {}
    for preset in config.presets:
        overrides: dict[str, object] = {"num_joints": skeleton.num_joints, "parents": skeleton.parents,
                                        "num_classes": config.num_classes, **config.recognizer_overrides}
        if config.frames:
            overrides["num_frames"] = config.frames
        model_config = recognizer_preset(preset, **overrides)
        torch.manual_seed(0)
        model = Recognizer(model_config)
        shape = (model_config.num_frames, skeleton.num_joints, model_config.in_channels)
        models[preset] = (model, lambda b, s=shape: torch.randn((b,) + s, generator=generator), lambda out: out.logits)
        figures[preset] = {"recognizer_params": count_parameters(model), "frames": model_config.num_frames,
                           "feature_dims": list(model.feature_dims), "feature_frames": list(model.feature_frames)}
    if config.reference:
        frames = config.frames or 64
        torch.manual_seed(0)
        replica = PublishedRecognizerReplica(per_frame=2 * 25 * 6, graph_nodes=2 * 25, num_classes=config.num_classes,
                                             frames=frames)
        models["published_replica"] = (replica, lambda b: torch.randn(b, frames, 2 * 25 * 6, generator=generator),
                                       lambda out: out)
        figures["published_replica"] = {"recognizer_params": count_parameters(replica), "frames": frames}
    train_repeats = max(1, config.repeats // 2)
    step_key = f"b{config.train_batch}"

    labels = torch.randint(0, config.num_classes, (config.train_batch,), generator=generator)
    train_jobs = {name: _train_step(model.train(), (make(config.train_batch),),
                                    lambda out, logits=logits: F.cross_entropy(logits(out), labels))
                  for name, (model, make, logits) in models.items()}
    for name, seconds in _time_round_robin(train_jobs, config.warmup, train_repeats).items():
        _record(figures[name], f"train_step_ms_{step_key}", seconds, 1000.0)

    if config.cotrain:
        # Subjects 1-7 of every 10 clips of a class are training clips: 84 of each 120 clips.
        dataset = generate_procedural_dataset(seed=0, clips_per_class=10 * math.ceil(config.train_batch / 84))
        with tempfile.TemporaryDirectory() as tmp:
            cotrain_jobs: dict[str, Callable[[], object]] = {}
            for preset in config.presets:
                cotrain_jobs[preset], figures[preset]["cotrain_setup"] = _cotrain_step(
                    preset, config, figures[preset]["frames"], dataset, Path(tmp) / preset)
            if config.reference:
                denoiser_step = _published_denoiser_step(config, generator)
                recognizer_step = train_jobs["published_replica"]
                cotrain_jobs["published_replica"] = lambda: (recognizer_step(), denoiser_step())
                if config.mixed_precision != "no":
                    cotrain_jobs["published_replica_autocast"] = cpu_autocast(cotrain_jobs["published_replica"],
                                                                           config.mixed_precision)
            for name, seconds in _time_round_robin(cotrain_jobs, config.warmup, train_repeats).items():
                suffix = "_autocast" if name.endswith("_autocast") else ""
                _record(figures[name.removesuffix(suffix)], f"cotrain_step_ms_{step_key}{suffix}", seconds, 1000.0)

    inference_jobs, clips = {}, {}
    for name, (model, make, _) in models.items():
        model.eval()
        for batch in config.batches:
            runs = max(1, math.ceil(config.clips_per_run / batch))
            inference_jobs[(name, batch)] = _inference(model, make(batch), runs)
            clips[(name, batch)] = runs * batch
    for (name, batch), seconds in _time_round_robin(inference_jobs, config.warmup, config.repeats).items():
        _record(figures[name], f"infer_ms_per_clip_b{batch}", seconds, 1000.0 / clips[(name, batch)])

    if config.ensemble or config.onnx:
        dataset = generate_procedural_dataset(seed=0, clips_per_class=2)
        for preset in config.presets:
            if config.ensemble:
                figures[preset]["ensemble"] = ensemble_inference(preset, config, figures[preset]["frames"], dataset)
            if config.onnx:
                figures[preset]["onnx"] = onnx_inference(preset, config, figures[preset]["frames"], dataset)

    if config.reference:
        published = figures["published_replica"]
        for preset in config.presets:
            ratios = {key: _figure(figures[preset][key] / published[key])
                      for key in published if key in figures[preset] and key not in ("frames", "spread")}
            autocast_key = f"cotrain_step_ms_{step_key}_autocast"
            if autocast_key in published and f"cotrain_step_ms_{step_key}" in figures[preset]:
                ratios[autocast_key] = _figure(figures[preset][f"cotrain_step_ms_{step_key}"] / published[autocast_key])
            figures[preset]["ratio_to_published"] = ratios

    features = torch.randn(config.triplet_batch, config.triplet_dim, generator=generator)
    triplet_labels = torch.randint(0, config.num_classes, (config.triplet_batch,), generator=generator)
    trainable = features.clone().requires_grad_()

    def triplet_forward() -> None:
        with torch.no_grad():
            batch_hard_triplet_loss(features, triplet_labels, 0.3, generator=generator)

    def triplet_backward() -> None:
        batch_hard_triplet_loss(trainable, triplet_labels, 0.3, generator=generator)[0].backward()

    triplet_key = f"b{config.triplet_batch}_d{config.triplet_dim}"
    triplet: dict[str, object] = {}
    triplet_times = _time_round_robin({"forward": triplet_forward, "backward": triplet_backward},
                                      config.warmup, 3 * config.repeats)
    _record(triplet, f"triplet_ms_{triplet_key}", triplet_times["forward"], 1000.0)
    _record(triplet, f"triplet_backward_ms_{triplet_key}", triplet_times["backward"], 1000.0)
    triplet["triplet_spread"] = triplet.pop("spread")
    return {**figures, **triplet, "threads": config.threads, "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}

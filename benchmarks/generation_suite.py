"""The ``generation`` benchmark: guided synthesis throughput in clips per second.

The models are those a co-training run of the given preset builds (the default ``cpu`` preset:
the ``default`` recognizer, the ``cpu`` generator, 52 frames, Kinect v1, 12 classes), freshly
initialised: sampling costs the same whatever the weights. The data is a small procedural
dataset (the exemplar bank of feature guidance). Each guidance setting samples one warm-up batch
(two steps) and then ``repeats`` timed batches; the figure is their median. The
torch thread count and the machine's load average are recorded beside the figures: on a shared
CPU they explain most of the spread. For comparison, the published pipeline needs 1000 DDPM
steps at about 8.8 s per clip on 2 CPU threads.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from guided_gen.guidance import ExemplarBank, GuidanceConfig, GuidedSampler, parse_guidance
from imdm.bundle import TrainedRecognizer
from imdm.training.cotrain import CoTrainConfig, CoTrainer
from mdm import ASSETS_DIR
from mdm.config import load_yaml, merge
from mdm.data.splits import carve_validation_split
from mdm.data.procedural import generate_procedural_dataset
from mdm.generator import MotionGenerator


@dataclass
class SuiteConfig:
    """Options of the generation suite.

    Attributes:
        preset: co-training preset whose models are timed (``assets/configs/cotrain``).
        steps: DDIM steps per sample.
        batch_size: clips sampled together.
        guidances: settings to time, each as ``--guidance`` takes them.
        repeats: timed batches per setting (after one short warm-up batch).
        threads: torch CPU threads; 0 keeps torch's default.
        seed: seed of the weights, the data and the noise.
    """

    preset: str = "cpu"
    steps: int = 50
    batch_size: int = 64
    guidances: list[str] = field(default_factory=lambda: ["none", "feature", "cfg", "classifier",
                                                          "feature,cfg,classifier"])
    repeats: int = 3
    threads: int = 0
    seed: int = 0


def fresh_models(preset: str, seed: int) -> tuple[MotionGenerator, TrainedRecognizer, ExemplarBank]:
    """Freshly initialised generator and recognizer of a co-training preset, and an exemplar bank."""
    config = merge(CoTrainConfig(), load_yaml(ASSETS_DIR / "configs" / "cotrain" / f"{preset}.yaml"), preset)
    config = merge(config, {"seed": seed})
    dataset = carve_validation_split(generate_procedural_dataset(seed=seed, clips_per_class=12), 0.1, seed)
    with tempfile.TemporaryDirectory() as folder:
        trainer = CoTrainer(config, folder, progress=False, dataset=dataset)
    generator = MotionGenerator(trainer.generator.spec, trainer.denoiser.ema.model, trainer.generator.objective.stats)
    recognizer = TrainedRecognizer(trainer.recognizer_spec, trainer.recognizer.ema.model)
    bank = ExemplarBank.from_dataset(recognizer, trainer.train_set, trainer.generator.feature_stages)
    return generator, recognizer, bank


def run_suite(config: SuiteConfig) -> dict[str, object]:
    """Clips per second of guided DDIM sampling for each guidance setting."""
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    generator, recognizer, bank = fresh_models(config.preset, config.seed)
    labels = torch.arange(config.batch_size) % len(generator.spec.class_names)
    results: dict[str, object] = {
        "models": "freshly initialised (sampling cost does not depend on the weights)",
        "torch_threads": torch.get_num_threads(),
        "batch_size": config.batch_size,
        "steps": config.steps,
        "frames": generator.spec.num_frames,
        "joints": generator.skeleton.num_joints,
        "published_seconds_per_clip_1000_steps": 8.8,
        "settings": {},
    }
    for text in config.guidances:
        guidance = GuidanceConfig(**parse_guidance(text), steps=config.steps)
        warm_up = GuidedSampler(generator, recognizer, bank, replace(guidance, steps=2))
        warm_up.sample(labels, noise=torch.Generator().manual_seed(config.seed), rng=np.random.default_rng(0))
        sampler = GuidedSampler(generator, recognizer, bank, guidance)
        seconds = []
        for repeat in range(config.repeats):
            start = time.perf_counter()
            sampler.sample(labels, noise=torch.Generator().manual_seed(config.seed + repeat),
                           rng=np.random.default_rng(repeat))
            seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        results["settings"][text] = {  # type: ignore[index]
            "guidance": guidance.describe(),
            "batch_seconds": seconds,
            "batch_seconds_median": median,
            "clips_per_second": config.batch_size / median,
            "seconds_per_clip": median / config.batch_size,
        }
    return results

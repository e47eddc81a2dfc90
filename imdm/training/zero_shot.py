"""Zero-shot recognition and retrieval runs: train on the seen classes only, then score unseen ones.

1. :func:`train_on_seen`: the recognizer (alone, with the skeleton–text alignment head) is trained by
   :class:`imdm.training.cotrain.CoTrainer` on the seen classes' clips, validation included, and with
   the seen classes' texts only; then TDSM's denoiser (:mod:`imdm.zero_shot`) is trained on the
   recognizer's pooled features of the seen training clips, conditioned on the seen texts; the
   generalized zero-shot gate's level is set on the seen classes' validation clips.
2. :func:`evaluate_zero_shot`: the unseen classes' texts are encoded only now; every test clip is scored
   against every class by the text-prototype baseline and by TDSM.

Run folder::

    recognizer_run/       the recognizer's co-training run on the seen classes (its own reports)
    tdsm.safetensors      TDSM's denoiser
    zero_shot.json        the split, figures of both scorers, wall clock
    summary.txt
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from imdm.models.recognizer import Recognizer
from imdm.text_alignment import TextAlignment
from imdm.training.building import encode_class_texts, pooled_features, save_text_embeddings
from imdm.training.cotrain import CoTrainConfig, CoTrainer
from imdm.zero_shot import (
    GATE_SEEN_SHARE,
    ClassSplit,
    TextFeatureDenoiser,
    gate_threshold,
    prototype_scores,
    seen_confidence,
    seen_classes_only,
    tdsm_loss,
    tdsm_scores,
    zero_shot_metrics,
)
from mdm.config import merge
from mdm.data.dataset import MotionDataset
from mdm.data.sources import load_training_data
from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import ConfigError
from mdm.text import ClassText, TextEncoder, class_texts

logger = logging.getLogger("imdm.zero_shot")
TDSM_STEPS = 3000
"""Optimisation steps of TDSM's denoiser."""
TDSM_BATCH = 128
TDSM_TRIPLET_WEIGHT = 1.0
DEFAULT_TEXT_WEIGHT = 0.5
"""Alignment weight of the recognizer run when the config leaves it at 0 (the baseline needs the head)."""


def text_conditions(embeddings: dict[str, torch.Tensor]) -> torch.Tensor:
    """TDSM's class conditions ``[K, 2E]``: the coarse and the fine embedding side by side."""
    return torch.cat([embeddings["coarse"], embeddings["fine"]], dim=-1)


@dataclass
class SeenModels:
    """What training on the seen classes produces."""

    recognizer: Recognizer
    alignment: TextAlignment
    tdsm: TextFeatureDenoiser
    gate_threshold: float
    """The generalized zero-shot gate's confidence level, chosen on the seen classes' validation clips."""
    pipeline: ClipPipelineConfig
    batch_size: int
    train_seconds: float


def train_tdsm(features: torch.Tensor, labels: torch.Tensor, conditions: torch.Tensor, seed: int,
               progress: bool = True) -> TextFeatureDenoiser:
    """TDSM's denoiser trained on pooled features ``[N, D]`` of classes ``[N]`` (indices of ``conditions``
    ``[K, E]``) for :data:`TDSM_STEPS` steps of :data:`TDSM_BATCH` clips."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TextFeatureDenoiser(features.shape[1], conditions.shape[1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, TDSM_STEPS)
    model.train()
    bar = tqdm(range(TDSM_STEPS), desc="TDSM", unit="step", disable=not progress)
    for _ in bar:
        index = torch.randint(0, len(features), (TDSM_BATCH,), generator=generator)
        loss, terms = tdsm_loss(model, features[index], labels[index], conditions, TDSM_TRIPLET_WEIGHT, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix({k: f"{v:.4f}" for k, v in terms.items()})
    return model.eval()


def train_on_seen(config: CoTrainConfig, dataset: MotionDataset, split: ClassSplit, texts: list[ClassText],
                  output_dir: Path, *, progress: bool = True) -> SeenModels:
    """The recognizer, its alignment head and TDSM, trained on ``split``'s seen classes alone.

    Args:
        dataset: every class's clips with a train/val/test split; only the seen classes' clips reach training.
        texts: every class's texts (in ``dataset.class_names`` order); only the seen ones are encoded here.
    """
    started = time.monotonic()
    seen_data = seen_classes_only(dataset, split)
    run_dir = output_dir / "recognizer_run"
    encoder = TextEncoder()
    seen_embeddings = encode_class_texts([texts[k] for k in split.seen], encoder)
    save_text_embeddings(seen_embeddings, run_dir)
    text_weight = config.recognizer.text_weight or DEFAULT_TEXT_WEIGHT
    inner = merge(config, {"generator": {"enabled": False}, "recognizer": {"text_weight": text_weight},
                           "data": {"texts": None}, "render_samples": False})
    trainer = CoTrainer(inner, run_dir, progress=progress, dataset=seen_data)
    trainer.fit()
    assert trainer.text_alignment is not None
    recognizer = trainer.recognizer.ema.model.eval()
    alignment = trainer.text_alignment.ema.model.eval()
    train_set = seen_data.split_subset("train")
    features = pooled_features(recognizer, train_set, inner.pipeline, inner.batch_size)
    tdsm = train_tdsm(features, torch.as_tensor(train_set.labels), text_conditions(seen_embeddings), config.seed,
                      progress)
    save_file({k: v.contiguous() for k, v in tdsm.state_dict().items()}, str(output_dir / "tdsm.safetensors"))
    val_features = pooled_features(recognizer, trainer.val_set, inner.pipeline, inner.batch_size)
    with torch.no_grad():
        threshold = gate_threshold(seen_confidence(recognizer.classifier(val_features).numpy()))
    return SeenModels(recognizer, alignment, tdsm, threshold, inner.pipeline, inner.batch_size,
                      time.monotonic() - started)


@torch.no_grad()
def evaluate_zero_shot(models: SeenModels, dataset: MotionDataset, split: ClassSplit,
                       texts: list[ClassText]) -> dict[str, Any]:
    """Both scorers' :func:`zero_shot_metrics` on ``dataset``'s test clips against every class's texts
    (encoded here: the first time the unseen classes' texts are read), and the wall clock per clip."""
    embeddings = encode_class_texts(texts, TextEncoder())
    test = dataset.split_subset("test")
    started = time.monotonic()
    features = pooled_features(models.recognizer, test, models.pipeline, models.batch_size)
    feature_seconds = time.monotonic() - started
    started = time.monotonic()
    prototype = prototype_scores(models.alignment.projection(features), embeddings["coarse"])
    prototype_seconds = time.monotonic() - started
    started = time.monotonic()
    tdsm = tdsm_scores(models.tdsm, features, text_conditions(embeddings))
    tdsm_seconds = time.monotonic() - started
    labels = np.asarray(test.labels)
    seen_logits = models.recognizer.classifier(features).numpy()
    per_clip_ms = 1000 / max(len(test), 1)
    return {
        "baseline": zero_shot_metrics(prototype.numpy(), labels, split, seen_logits, models.gate_threshold),
        "tdsm": zero_shot_metrics(tdsm.numpy(), labels, split, seen_logits, models.gate_threshold),
        "gate_threshold": models.gate_threshold,
        "test_clips": len(test), "unseen_test_clips": int(np.isin(labels, split.unseen).sum()),
        "ms_per_clip": {"features": feature_seconds * per_clip_ms, "baseline": prototype_seconds * per_clip_ms,
                        "tdsm": tdsm_seconds * per_clip_ms},
    }


def zero_shot(config: CoTrainConfig, split_of: Callable[[list[str]], ClassSplit], output_dir: str | Path, *,
              progress: bool = True) -> dict[str, Any]:
    """Train on the seen classes and evaluate zero-shot recognition and retrieval; writes the run folder.

    Args:
        config: the recognizer's training settings (the generator is off; alignment on).
        split_of: ``class_names -> ClassSplit``, e.g. ``lambda names: ClassSplit.random(names, 3, seed)``.
    """
    if config.train_on_validation:
        raise ConfigError("a zero-shot run sets its seen/unseen gate on validation clips: train_on_validation "
                          "leaves none")
    output_dir = Path(output_dir)
    dataset = load_training_data(config.data)
    split = split_of(list(dataset.class_names))
    texts = class_texts(list(dataset.class_names), config.data.texts, config.data.name)
    logger.info("unseen classes: %s", ", ".join(split.unseen_names))
    models = train_on_seen(config, dataset, split, texts, output_dir, progress=progress)
    figures = evaluate_zero_shot(models, dataset, split, texts)
    result = {"dataset": config.data.name, "seed": config.seed, "seen": split.seen_names, "unseen": split.unseen_names,
              "train_minutes": models.train_seconds / 60, **figures}
    (output_dir / "zero_shot.json").write_text(json.dumps(result, indent=2))
    summary = summary_table(result)
    (output_dir / "summary.txt").write_text(summary)
    print(summary)
    return result


def summary_table(result: dict[str, Any]) -> str:
    """The figures of both scorers as a small text table."""
    rows = [("zero-shot top-1", "zsl_top1"), ("GZSL seen", "gzsl_seen"), ("GZSL unseen", "gzsl_unseen"),
            ("GZSL harmonic mean", "gzsl_harmonic"), ("motion->text R@1", "motion_to_text_R@1"),
            ("text->motion R@1", "text_to_motion_R@1"), ("text->motion R@3", "text_to_motion_R@3")]
    lines = [f"{result['dataset']}: unseen {', '.join(result['unseen'])} ({result['unseen_test_clips']} test clips)",
             f"{'':<22}{'baseline':>10}{'TDSM':>10}"]
    lines += [f"{name:<22}{result['baseline'][key]:>10.2%}{result['tdsm'][key]:>10.2%}" for name, key in rows]
    lines.append(f"GZSL gate: a clip goes to the seen classes when the recognizer's confidence is >= "
                 f"{result['gate_threshold']:.3f} (that of {GATE_SEEN_SHARE:.0%} of the seen validation clips)")
    lines.append(f"training {result['train_minutes']:.1f} min; TDSM scoring {result['ms_per_clip']['tdsm']:.2f} ms a clip")
    return "\n".join(lines) + "\n"

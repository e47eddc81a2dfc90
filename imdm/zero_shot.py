"""Zero-shot recognition of unseen actions and text–motion retrieval, on a recognizer's pooled features.

* :class:`ClassSplit`: which classes are seen in training and which are held out, chosen at random
  (seeded) or by name; :func:`seen_classes_only` keeps a dataset's seen-class clips, renumbered.
* Text-prototype baseline: a recognizer feature projected into the text space (the alignment head
  of :mod:`imdm.text_alignment`), nearest class text (:func:`prototype_scores`).
* TDSM (triplet diffusion for skeleton–text matching): :class:`TextFeatureDenoiser` learns to
  denoise pooled skeleton features conditioned on a class text, with the denoising loss plus a
  triplet term that makes the true text denoise better than a wrong seen one by a margin
  (:func:`tdsm_loss`). A clip goes to the candidate class whose text gives the smallest denoising
  error at a fixed timestep over a few fixed noises (:func:`tdsm_scores`), all candidates in one batch.
* :func:`zero_shot_metrics`: zero-shot top-1, generalized zero-shot (seen, unseen, harmonic mean) and
  retrieval recalls from ``[N, C]`` scores. In generalized zero-shot a gate (:func:`gate_threshold`,
  chosen on seen classes' validation clips) sends a clip the recognizer is confident about to the
  recognizer's seen class and any other clip to the scorer's best unseen class.

The class texts condition as sentence embeddings (the coarse phrases' mean and the fine description,
concatenated), not as the text encoder's token states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdm.data.dataset import MotionDataset
from mdm.diffusion.scheduler import DiffusionScheduler
from mdm.errors import ConfigError
from mdm.models.denoiser import sinusoidal_embedding

HIDDEN = 256
"""Width of the denoiser MLP."""
BLOCKS = 3
"""Residual blocks of the denoiser."""
TRAIN_TIMESTEPS = 100
"""Diffusion steps of TDSM's training process (cosine schedule)."""
SCORING_TIMESTEP = TRAIN_TIMESTEPS // 2
"""The diffusion step at which candidates' denoising errors are compared."""
SCORING_NOISES = 8
"""Fixed noises averaged over when scoring."""
TRIPLET_MARGIN = 0.05
"""Margin of the triplet diffusion loss, in mean squared error of the velocity."""
GATE_SEEN_SHARE = 0.95
"""Share of seen-class validation clips the generalized zero-shot gate keeps on the seen side (the usual
95% true-positive rate of out-of-distribution detection; fixed, not tuned)."""


@dataclass(frozen=True)
class ClassSplit:
    """Seen and unseen classes of a dataset, as indices into its ``class_names`` (ascending)."""

    class_names: tuple[str, ...]
    seen: tuple[int, ...]
    unseen: tuple[int, ...]

    @classmethod
    def random(cls, class_names: list[str], unseen_count: int, seed: int) -> ClassSplit:
        """``unseen_count`` classes drawn at random with ``seed``; ConfigError unless ``1 <= unseen_count < K - 1``."""
        if not 1 <= unseen_count <= len(class_names) - 2:
            raise ConfigError(f"--unseen-count must lie in [1, {len(class_names) - 2}] for {len(class_names)} classes "
                              f"(at least two classes stay seen), got {unseen_count}")
        unseen = np.random.default_rng(seed).choice(len(class_names), size=unseen_count, replace=False)
        return cls.of(class_names, sorted(int(k) for k in unseen))

    @classmethod
    def named(cls, class_names: list[str], unseen_names: list[str]) -> ClassSplit:
        """The classes ``unseen_names`` held out; ConfigError naming unknown or repeated names."""
        unknown = [name for name in unseen_names if name not in class_names]
        if unknown:
            raise ConfigError(f"--unseen: no class(es) {unknown}; the classes are {', '.join(class_names)}")
        if len(set(unseen_names)) != len(unseen_names):
            raise ConfigError(f"--unseen names a class twice: {unseen_names}")
        if not 1 <= len(unseen_names) <= len(class_names) - 2:
            raise ConfigError(f"--unseen must hold 1 to {len(class_names) - 2} classes (at least two stay seen)")
        return cls.of(class_names, sorted(class_names.index(name) for name in unseen_names))

    @classmethod
    def of(cls, class_names: list[str], unseen: list[int]) -> ClassSplit:
        seen = [k for k in range(len(class_names)) if k not in unseen]
        return cls(tuple(class_names), tuple(seen), tuple(unseen))

    @property
    def unseen_names(self) -> list[str]:
        return [self.class_names[k] for k in self.unseen]

    @property
    def seen_names(self) -> list[str]:
        return [self.class_names[k] for k in self.seen]


def seen_classes_only(dataset: MotionDataset, split: ClassSplit) -> MotionDataset:
    """The clips of ``dataset`` whose class is seen (every split), labels renumbered to
    ``split.seen``'s order and class names cut to the seen ones: nothing of an unseen class is left."""
    if list(dataset.class_names) != list(split.class_names):
        raise ConfigError("the class split was made for other classes than the dataset's")
    kept = dataset.subset(np.flatnonzero(np.isin(dataset.labels, split.seen)))
    renumber = np.full(dataset.num_classes, -1, np.int64)
    renumber[list(split.seen)] = np.arange(len(split.seen))
    return MotionDataset(clips=kept.clips, labels=renumber[kept.labels], class_names=split.seen_names,
                         skeleton=kept.skeleton, subjects=kept.subjects, views=kept.views, clip_ids=kept.clip_ids,
                         split=kept.split, fps=kept.fps, source=f"{kept.source} (seen classes)")


def prototype_scores(projected: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``[N, C]`` of projected features ``[N, E]`` to candidate class texts ``[C, E]``."""
    return F.normalize(projected.float(), dim=-1) @ F.normalize(text_embeddings.float(), dim=-1).T


class ResidualBlock(nn.Module):
    """``x + MLP(LayerNorm(x) * (1 + scale) + shift)`` with the scale and shift from the condition."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(width, 2 * width)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(condition).chunk(2, dim=-1)
        return x + self.mlp(self.norm(x) * (1 + scale) + shift)


class FeatureDenoiser(nn.Module):
    """Velocity-predicting denoiser of pooled features: ``(x_t [B, D], t [B], condition [B, E]) -> v [B, D]``."""

    def __init__(self, feature_dim: int, condition_dim: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.input = nn.Linear(feature_dim, hidden)
        self.condition = nn.Sequential(nn.Linear(condition_dim + hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(ResidualBlock(hidden) for _ in range(blocks))
        self.output = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, feature_dim))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        time = sinusoidal_embedding(t.float(), self.hidden)
        cond = self.condition(torch.cat([condition, time], dim=-1))
        h = self.input(x_t)
        for block in self.blocks:
            h = block(h, cond)
        return self.output(h)


class TextFeatureDenoiser(nn.Module):
    """TDSM's denoiser: pooled skeleton features ``[B, D]`` denoised under a class text ``[B, E]``
    (velocity prediction, cosine schedule of :data:`TRAIN_TIMESTEPS` steps)."""

    def __init__(self, feature_dim: int, text_dim: int) -> None:
        super().__init__()
        self.denoiser = FeatureDenoiser(feature_dim, text_dim, HIDDEN, BLOCKS)
        self.scheduler = DiffusionScheduler(TRAIN_TIMESTEPS, beta_schedule="cosine")

    def errors(self, features: torch.Tensor, texts: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-row mean squared velocity error ``[B]`` of features ``[B, D]`` under texts ``[B, E]`` at steps
        ``t`` ``[B]`` with ``noise`` ``[B, D]``."""
        x_t = self.scheduler.q_sample(features, t, noise)
        signal = self.scheduler.train.sqrt_alphas_cumprod[t.cpu()].to(features)[:, None]
        noise_scale = self.scheduler.train.sqrt_one_minus_alphas_cumprod[t.cpu()].to(features)[:, None]
        velocity = signal * noise - noise_scale * features
        return (self.denoiser(x_t, t, texts) - velocity).pow(2).mean(dim=-1)


def tdsm_loss(model: TextFeatureDenoiser, features: torch.Tensor, labels: torch.Tensor, texts: torch.Tensor,
              triplet_weight: float, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Denoising loss under the true class text plus ``triplet_weight`` times the triplet diffusion loss
    ``relu(error(true text) - error(wrong text) + margin)``, the wrong text a random other class of ``texts``.

    Args:
        features: ``[B, D]`` pooled features of seen-class clips; ``labels`` ``[B]`` index ``texts``.
        texts: ``[K, E]`` conditions of the seen classes (the only texts training sees).
    """
    device = features.device
    count = len(features)
    t = torch.randint(0, TRAIN_TIMESTEPS, (count,), generator=generator).to(device)
    noise = torch.randn(features.shape, generator=generator).to(device)
    shift = torch.randint(1, len(texts), (count,), generator=generator).to(device)
    wrong = (labels + shift) % len(texts)
    true_error = model.errors(features, texts[labels], t, noise)
    wrong_error = model.errors(features, texts[wrong], t, noise)
    triplet = F.relu(true_error - wrong_error + TRIPLET_MARGIN).mean()
    loss = true_error.mean() + triplet_weight * triplet
    return loss, {"denoising": true_error.mean().item(), "triplet": triplet.item()}


@torch.no_grad()
def tdsm_scores(model: TextFeatureDenoiser, features: torch.Tensor, texts: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``[N, C]`` minus the mean denoising error of each clip's feature ``[N, D]`` under each candidate
    text ``[C, E]``, at :data:`SCORING_TIMESTEP` over :data:`SCORING_NOISES` seeded noises shared by
    every candidate; higher is better. One batch of ``R * N * C`` rows, no loop over clips."""
    count, dim = features.shape
    candidates = len(texts)
    noise = torch.randn(SCORING_NOISES, count, dim, generator=torch.Generator().manual_seed(seed)).to(features)
    rows_noise = noise[:, :, None, :].expand(-1, -1, candidates, -1).reshape(-1, dim)
    rows_features = features[None, :, None, :].expand(SCORING_NOISES, -1, candidates, -1).reshape(-1, dim)
    rows_texts = texts[None, None, :, :].expand(SCORING_NOISES, count, -1, -1).reshape(-1, texts.shape[1])
    t = torch.full((len(rows_features),), SCORING_TIMESTEP, dtype=torch.long, device=features.device)
    errors = model.errors(rows_features, rows_texts, t, rows_noise).view(SCORING_NOISES, count, candidates)
    return -errors.mean(dim=0)


def recall_at(ranks: np.ndarray, k: int) -> float:
    """Share of queries whose first relevant item is within the top ``k`` (ranks from 1)."""
    return float(np.mean(ranks <= k))


def retrieval_metrics(scores: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 3, 5)) -> dict[str, float]:
    """Motion→text and text→motion recalls and median ranks from scores ``[N, C]`` of ``N`` clips against
    ``C`` class texts, clip ``i`` belonging to text ``labels[i]``.

    Motion→text: a clip's rank is that of its class text among the ``C`` texts. Text→motion: each text
    that has clips is a query over the ``N`` clips; its rank is that of its best-placed clip.
    """
    order = np.argsort(-scores, axis=1, kind="stable")
    motion_ranks = 1 + np.argmax(order == labels[:, None], axis=1)
    text_ranks = []
    for text in np.unique(labels):
        clip_order = np.argsort(-scores[:, text], kind="stable")
        text_ranks.append(1 + int(np.flatnonzero(labels[clip_order] == text)[0]))
    text_ranks = np.array(text_ranks)
    metrics: dict[str, float] = {}
    for direction, ranks in (("motion_to_text", motion_ranks), ("text_to_motion", text_ranks)):
        for k in ks:
            metrics[f"{direction}_R@{k}"] = recall_at(ranks, k)
        metrics[f"{direction}_median_rank"] = float(np.median(ranks))
    return metrics


def seen_confidence(seen_logits: np.ndarray) -> np.ndarray:
    """``[N]`` a recognizer's top softmax probability from its logits ``[N, S]`` over the seen classes."""
    return torch.softmax(torch.as_tensor(seen_logits, dtype=torch.float64), dim=1).amax(1).numpy()


def gate_threshold(val_confidence: np.ndarray) -> float:
    """The :func:`seen_confidence` at or above which a clip is given a seen class in generalized zero-shot:
    the level that keeps :data:`GATE_SEEN_SHARE` of the validation clips of seen classes (their
    confidences ``[V]``) on the seen side. Only seen classes' validation clips choose it."""
    if len(val_confidence) == 0:
        raise ConfigError("the seen/unseen gate needs validation clips of the seen classes; there are none")
    return float(np.quantile(val_confidence, 1.0 - GATE_SEEN_SHARE, method="lower"))


def zero_shot_metrics(scores: np.ndarray, labels: np.ndarray, split: ClassSplit, seen_logits: np.ndarray,
                      threshold: float) -> dict[str, float]:
    """Figures of one scorer from scores ``[N, K]`` of test clips against every class (original order) and
    their labels ``[N]``.

    ``zsl_top1``: unseen-class clips among the unseen candidates only. Generalized zero-shot, every
    class a candidate, through a gate: a clip whose :func:`seen_confidence` (from ``seen_logits``
    ``[N, S]``, the recognizer's logits over ``split.seen``) reaches ``threshold``
    (:func:`gate_threshold`) takes the recognizer's seen class, any other clip the scorer's best unseen
    class; ``gzsl_seen`` / ``gzsl_unseen`` are the per-group accuracies and ``gzsl_harmonic`` their
    harmonic mean. Retrieval (:func:`retrieval_metrics`) on the unseen-class clips against the unseen texts.
    """
    seen, unseen = np.array(split.seen), np.array(split.unseen)
    is_unseen = np.isin(labels, unseen)
    unseen_scores = scores[is_unseen][:, unseen]
    unseen_labels = np.searchsorted(unseen, labels[is_unseen])
    to_seen = seen_confidence(seen_logits) >= threshold
    predictions = np.where(to_seen, seen[seen_logits.argmax(1)], unseen[scores[:, unseen].argmax(1)])
    seen_acc = float(np.mean(predictions[~is_unseen] == labels[~is_unseen])) if np.any(~is_unseen) else float("nan")
    unseen_acc = float(np.mean(predictions[is_unseen] == labels[is_unseen]))
    harmonic = 0.0 if seen_acc + unseen_acc == 0 else 2 * seen_acc * unseen_acc / (seen_acc + unseen_acc)
    return {"zsl_top1": float(np.mean(unseen_scores.argmax(1) == unseen_labels)),
            "gzsl_seen": seen_acc, "gzsl_unseen": unseen_acc, "gzsl_harmonic": harmonic,
            **retrieval_metrics(unseen_scores, unseen_labels)}

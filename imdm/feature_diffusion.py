"""Text-guided latent feature diffusion (CoCoDiff style): a training-only part that learns the
distribution of the recognizer's pooled features per class and feeds generated features to the
recognizer's classifier, leaving the deployed recognizer unchanged.

A small MLP denoises pooled features ``[B, D]`` conditioned on the class: the
embedding of the class's fine text (``[K, E]``, fixed) or, without text, a learned class
embedding. It is trained alongside the recognizer on its detached pooled features (so it follows
the feature space as the recognizer learns), with the project's noise scheduler (velocity prediction, turned into the x0 its sampler takes); features are
drawn with a few DDPM steps. The co-trainer adds the classifier's cross-entropy (and the
text alignment, when on) on generated features of the batch's classes once a share of the
schedule has passed (:data:`GENERATED_FROM`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mdm.diffusion.sampling import sample
from mdm.diffusion.scheduler import DiffusionScheduler
from mdm.errors import ConfigError
from mdm.models.denoiser import sinusoidal_embedding
from mdm.training.optim import OptimConfig

GENERATED_FROM = 0.25
"""Share of the schedule after which generated features reach the classifier (the features and
their diffusion model are still settling before)."""


HIDDEN = 256
"""Width of the denoiser MLP."""
BLOCKS = 3
"""Residual blocks of the denoiser."""
TRAIN_TIMESTEPS = 100
"""Diffusion steps of the training process (cosine schedule)."""
SAMPLE_STEPS = 10
"""Reverse steps when drawing features (DDPM, respaced); with :data:`HIDDEN` they keep the part's
cost a small share of a training step's."""
NOISE_DRAWS = 8
"""Noise levels and noises drawn per feature in one training step: the part sees each batch's features
eight times over. With one draw its samples were barely class-conditional by the end of a short
schedule (15% assigned to their class on KARD after 210 steps); with eight, on fixed features, 100%
after 100 steps."""
OPTIM = OptimConfig(lr=2e-3, weight_decay=0.0, warmup_steps=20)
"""The part's own optimiser settings (it learns faster than the recognizer, and without decay)."""


@dataclass
class FeatureDiffusionConfig:
    """Text-guided latent feature diffusion over the recognizer's pooled feature.

    Attributes:
        weight: weight of the classifier's loss on generated features; 0 turns the part off.
        text: condition on the classes' fine texts (else on a learned class embedding).
    """

    weight: float = 0.0
    text: bool = True

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ConfigError(f"recognizer.feature_diffusion.weight must be >= 0, got {self.weight}")


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


class FeatureDiffusion(nn.Module):
    """The denoiser, its class conditions and its noise process.

    Args:
        feature_dim: ``D`` of the pooled feature.
        num_classes: ``K``.
        fine_text_embeddings: float ``[K, E]`` embeddings of the classes' fine texts, the
            conditions; None conditions on a learned ``[K, HIDDEN]`` class embedding instead.
    """

    def __init__(self, feature_dim: int, num_classes: int, fine_text_embeddings: torch.Tensor | None = None) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        if fine_text_embeddings is not None:
            if fine_text_embeddings.shape[0] != num_classes:
                raise ConfigError(f"{fine_text_embeddings.shape[0]} fine-text embeddings for {num_classes} classes")
            self.register_buffer("text_conditions", fine_text_embeddings.float())
            self.class_embedding = None
            condition_dim = fine_text_embeddings.shape[1]
        else:
            self.text_conditions = None
            self.class_embedding = nn.Embedding(num_classes, HIDDEN)
            condition_dim = HIDDEN
        self.denoiser = FeatureDenoiser(feature_dim, condition_dim, HIDDEN, BLOCKS)
        self.scheduler = DiffusionScheduler(TRAIN_TIMESTEPS, beta_schedule="cosine")

    def conditions(self, labels: torch.Tensor) -> torch.Tensor:
        """``[B, E]`` conditions of classes ``labels`` ``[B]``."""
        if self.class_embedding is not None:
            return self.class_embedding(labels)
        return self.text_conditions[labels]

    def signal_and_noise_scales(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``sqrt(abar_t)`` and ``sqrt(1 - abar_t)`` as ``[B, 1]`` in ``like``'s dtype and device."""
        index = t.cpu()
        signal = self.scheduler.train.sqrt_alphas_cumprod[index].to(like)[:, None]
        noise = self.scheduler.train.sqrt_one_minus_alphas_cumprod[index].to(like)[:, None]
        return signal, noise

    def predict_clean(self, x_t: torch.Tensor, t: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """``x0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v`` from the predicted velocity, ``[B, D]``."""
        signal, noise = self.signal_and_noise_scales(t, x_t)
        return signal * x_t - noise * self.denoiser(x_t, t, conditions)

    def forward(self, features: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None, draws: int = 1) -> torch.Tensor:
        """Mean squared error of the predicted velocity ``v = sqrt(abar_t) noise - sqrt(1 - abar_t) x0``
        for clean features ``[B, D]`` of classes ``[B]``, over ``draws`` noise levels and noises per
        feature. Predicting the velocity (not x0) keeps the features' spread: at small ``t`` the model
        need not learn to pass ``x_t`` through."""
        features, labels = features.float().repeat(draws, 1), labels.repeat(draws)
        t = torch.randint(0, self.scheduler.num_train_timesteps, (len(features),), generator=generator)
        t = t.to(features.device)
        noise = torch.randn(features.shape, generator=generator).to(features.device)
        x_t = self.scheduler.q_sample(features, t, noise)
        signal, noise_scale = self.signal_and_noise_scales(t, features)
        velocity = signal * noise - noise_scale * features
        return F.mse_loss(self.denoiser(x_t, t, self.conditions(labels)), velocity)

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Features ``[B, D]`` drawn for classes ``labels`` ``[B]`` (DDPM, :data:`SAMPLE_STEPS` steps)."""
        conditions = self.conditions(labels)
        features = sample(lambda x, t: self.predict_clean(x, t, conditions), self.scheduler,
                          (len(labels), self.feature_dim), num_inference_steps=SAMPLE_STEPS,
                          method="ddpm", generator=generator, device=labels.device)
        return features


def generated_feature_quality(diffusion: FeatureDiffusion, classifier: nn.Module, real: torch.Tensor,
                              labels: torch.Tensor, per_class: int = 32, seed: int = 0) -> dict[str, float]:
    """Sanity of the feature generator against the real features ``[N, D]`` of classes ``[N]``.

    ``class_accuracy``: share of ``per_class`` generated features per class that ``classifier``
    (``[B, D] -> [B, K]``) assigns to their conditioning class. ``spread_ratio``: the generated
    features' mean distance to their class mean over the real features', over the classes with two
    or more real features (1 = as spread as real).
    """
    generator = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels)
    wanted = classes.repeat_interleave(per_class).to(real.device)
    generated = diffusion.generate(wanted, generator=generator)
    accuracy = float((classifier(generated).argmax(-1) == wanted).float().mean())
    real_spread, generated_spread = [], []
    for label in classes.tolist():
        real_k = real[labels == label].float()
        if len(real_k) < 2:
            continue
        generated_k = generated[wanted == label]
        real_spread.append((real_k - real_k.mean(0)).norm(dim=-1).mean())
        generated_spread.append((generated_k - generated_k.mean(0)).norm(dim=-1).mean())
    ratio = float(torch.stack(generated_spread).mean() / torch.stack(real_spread).mean().clamp_min(1e-12))
    return {"class_accuracy": accuracy, "spread_ratio": ratio}

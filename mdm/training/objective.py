"""The diffusion training objective: noise a clean motion, denoise it, score the prediction."""

from __future__ import annotations

import torch
from torch import Tensor

from mdm.data.dataset import MotionDataset
from mdm.data.loader import ClipDataset
from mdm.data.transforms import ClipPipelineConfig
from mdm.diffusion.scheduler import DiffusionScheduler
from mdm.losses import DiffusionLossWeights, diffusion_loss
from mdm.models.denoiser import MotionDenoiser
from mdm.representation import MotionRepresentation, NormStats


STD_FLOOR_SHARE = 0.1
"""Each feature channel's standard deviation is floored at this share of the overall spread."""


class DiffusionObjective:
    """Turns position batches into normalised features and computes the denoising loss.

    Args:
        scheduler: the noise process.
        representation: positions -> features (and back, for the positional loss terms).
        stats: normalisation statistics of the training features.
        weights: loss term weights.
    """

    def __init__(self, scheduler: DiffusionScheduler, representation: MotionRepresentation, stats: NormStats,
                 weights: DiffusionLossWeights) -> None:
        self.scheduler = scheduler
        self.representation = representation
        self.stats = stats
        self.weights = weights

    def features(self, motion: Tensor) -> Tensor:
        """Normalised features ``[B, T, J', C]`` of positions ``[B, T, J, 3]``."""
        return self.stats.normalize(self.representation.encode(motion))

    def decode(self, x0: Tensor) -> Tensor:
        """Positions ``[B, T, J, 3]`` of normalised features."""
        return self.representation.decode(self.stats.denormalize(x0))

    def __call__(
        self,
        denoiser: MotionDenoiser | torch.nn.Module,
        x0: Tensor,
        mask: Tensor,
        labels: Tensor,
        *,
        features: list[Tensor] | None = None,
        styles: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of one batch.

        Args:
            denoiser: the model (possibly wrapped by Accelerate/DDP).
            x0: clean normalised features ``[B, T, J', C]``.
            mask: bool ``[B, T]`` valid frames.
            labels: int64 ``[B]``.
            features: recognizer features injected into the denoiser (co-training).
            styles: int64 ``[B]`` styles of a style-conditioned denoiser, or None.
            generator: draws timesteps and noise (validation uses a fixed one); None = global RNG.
        Returns:
            total loss and its unweighted terms.
        """
        batch = x0.shape[0]
        timesteps = torch.randint(0, self.scheduler.num_train_timesteps, (batch,), generator=generator,
                                  device=generator.device if generator is not None else x0.device).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype,
                            device=generator.device if generator is not None else x0.device).to(x0.device)
        x_t = self.scheduler.q_sample(x0, timesteps, noise)
        pred = denoiser(x_t, timesteps, labels, mask=mask, features=features, styles=styles)
        skeleton = self.representation.skeleton
        return diffusion_loss(pred.float(), x0, mask, self.weights, skeleton, self.decode)


def fit_feature_stats(dataset: MotionDataset, pipeline: ClipPipelineConfig,
                      representation: MotionRepresentation) -> NormStats:
    """Normalisation statistics of the evaluation-mode features of ``dataset`` (no augmentation),
    standard deviations floored at ``STD_FLOOR_SHARE`` of the overall spread."""
    clips = ClipDataset(dataset, pipeline, train=False)
    features = []
    for index in range(len(clips)):
        item = clips[index]
        valid = item["motion"][: int(item["length"])]
        features.append(representation.encode(valid[None])[0])
    stats = NormStats.fit(features)
    # Nearly constant channels (e.g. a joint that barely moves in this data) would blow up
    # under augmentation or in samples: floor each std at a share of the overall spread.
    spread = float(torch.sqrt((stats.std.square() + (stats.mean - stats.mean.mean()).square()).mean()))
    return NormStats(stats.mean, stats.std.clamp_min(STD_FLOOR_SHARE * spread))

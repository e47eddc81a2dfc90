"""Guided sampling from a co-trained generator: recognizer-feature, classifier-free and classifier guidance.

Three guidances, in any combination, each with its own scale, on top of DDPM or DDIM. Writing
``x(c, f)`` for the denoiser's clean-motion prediction with class ``c`` and injected recognizer
features ``f`` (``0`` = null class or no features), every step combines

    x0 = x(c, F) + (s_cfg - 1) * (x(c, F) - x(0, F)) + [s_feat > 0] (s_feat - 1) * (x(c, f) - x(c, 0))

with ``F = f`` when feature guidance is on (``s_feat > 0``) and no features otherwise. So
``s_feat = 1`` is plain conditioning on exemplar features (the paper), ``s_cfg = 1`` is no
classifier-free guidance, and the two extrapolations are independent. Classifier guidance then
moves the prediction up the co-trained recognizer's log-probability of the target class,

    x0 <- x0 + s_cls * g / rms(g),    g = d log p(c | recognizer_input(decode(x0))) / d x0,

in the generator's normalised feature space, the gradient normalised per sample so that
``s_cls`` is a step in units of one feature standard deviation.

Exemplars for feature guidance come from the training split only (:class:`ExemplarBank`
refuses any other clip); each sample averages ``k`` exemplars of its class or, in
``interpolate`` mode, mixes them with random convex weights (two exemplars: one uniform weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from imdm.bundle import TrainedRecognizer
from mdm.data.dataset import MotionDataset
from mdm.data.loader import ClipDataset, collate_clips
from mdm.data.transforms import ClipPipelineConfig, normalising_rotation, reference_poses
from mdm.diffusion.sampling import check_sampling_method, sample
from mdm.errors import ConfigError, UserError
from mdm.generator import MotionGenerator
from mdm.skeleton import Skeleton

GUIDANCE_NAMES = ("feature", "cfg", "classifier")
DEFAULT_SCALES = {"feature": 2.0, "cfg": 2.5, "classifier": 0.01}
"""Scale a guidance gets when it is named without one (``--guidance feature,cfg``). Feature 2: on
NW-UCLA the evaluator recognised 92.5% of the samples against 87.0% at 1 (the paper's plain
conditioning) and 89.5% at 3, with the lowest FID against training clips (docs/results.md).
Classifier 0.01: at 0.1 the NW-UCLA samples left the data (FID 497 against 147)."""
EXEMPLAR_MODES = ("mean", "interpolate")


@dataclass
class GuidanceConfig:
    """How one batch of samples is drawn.

    Attributes:
        feature: scale of recognizer-feature guidance; 0 = no features, 1 = plain conditioning.
        cfg: classifier-free guidance scale on the action label; 1 = none.
        classifier: classifier-guidance step (feature standard deviations per step); 0 = none.
        exemplars: training clips whose features each sample receives (``k``).
        exemplar_mode: ``mean`` (equal weights) or ``interpolate`` (random convex weights).
        steps: reverse steps (respacing of the training process).
        method: ``ddim``, ``ddpm`` or ``dpm++`` (:data:`mdm.diffusion.sampling.SAMPLING_METHODS`).
        eta: DDIM noise scale.
    """

    feature: float = 0.0
    cfg: float = 1.0
    classifier: float = 0.0
    exemplars: int = 2
    exemplar_mode: str = "interpolate"
    steps: int = 50
    method: str = "ddim"
    eta: float = 0.0

    def __post_init__(self) -> None:
        if self.feature < 0 or self.classifier < 0 or self.cfg < 0:
            raise ConfigError("guidance scales must be >= 0")
        if self.exemplars < 1:
            raise ConfigError(f"exemplars must be >= 1, got {self.exemplars}")
        if self.exemplar_mode not in EXEMPLAR_MODES:
            raise ConfigError(f"exemplar mode must be one of {list(EXEMPLAR_MODES)}, got {self.exemplar_mode!r}")
        check_sampling_method(self.method)
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")

    def describe(self) -> str:
        """One line naming every setting, for archive ``source`` strings and logs."""
        parts = [f"feature={self.feature:g}", f"cfg={self.cfg:g}", f"classifier={self.classifier:g}"]
        if self.feature > 0:
            parts.append(f"exemplars={self.exemplars}:{self.exemplar_mode}")
        parts.append(f"{self.method} steps={self.steps}" + (f" eta={self.eta:g}" if self.method == "ddim" else ""))
        return " ".join(parts)


def parse_guidance(text: str) -> dict[str, float]:
    """Scales of a guidance list such as ``feature,cfg=2.5,classifier=0.01`` (``none``: no guidance).

    A guidance named without ``=scale`` gets :data:`DEFAULT_SCALES`; unnamed ones are off.
    Returns ``{"feature": ..., "cfg": ..., "classifier": ...}``.
    """
    scales = {"feature": 0.0, "cfg": 1.0, "classifier": 0.0}
    if text.strip() == "none":
        return scales
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        if name not in GUIDANCE_NAMES:
            raise ConfigError(f"--guidance: unknown guidance {name!r}; choose from {', '.join(GUIDANCE_NAMES)} or none")
        try:
            scales[name] = float(value) if sep else DEFAULT_SCALES[name]
        except ValueError:
            raise ConfigError(f"--guidance: {name}={value!r} is not a number") from None
    return scales


# ----------------------------------------------------------------------------- exemplars
@dataclass
class ExemplarBank:
    """Recognizer features of real training clips, the exemplars of feature guidance.

    Attributes:
        features: per injected stage, float32 ``[N, T_i, D_i]``.
        labels: int64 ``[N]``.
        clip_ids: the ``N`` training clips' ids.
    """

    features: list[Tensor]
    labels: np.ndarray
    clip_ids: list[str]

    @classmethod
    @torch.no_grad()
    def from_dataset(cls, recognizer: TrainedRecognizer, train_set: MotionDataset, stages: list[int],
                     batch_size: int = 64) -> ExemplarBank:
        """Features of every clip of ``train_set`` through the recognizer's evaluation pipeline.

        Raises:
            ValueError: ``train_set`` holds a clip whose split is not ``train``.
        """
        if train_set.split is not None and np.any(train_set.split != "train"):
            raise ValueError("feature-guidance exemplars must come from the training split only")
        loader = DataLoader(ClipDataset(train_set, recognizer.spec.pipeline, train=False), batch_size=batch_size,
                            collate_fn=collate_clips)
        chunks: list[list[Tensor]] = [[] for _ in stages]
        for batch in loader:
            features = recognizer.model(batch["motion"].to(recognizer.device)).features
            for chunk, stage in zip(chunks, stages):
                chunk.append(features[stage].float().cpu())
        return cls([torch.cat(chunk) for chunk in chunks], train_set.labels.copy(), list(train_set.clip_ids))

    def draw(self, labels: np.ndarray, count: int, mode: str,
             rng: np.random.Generator) -> tuple[list[Tensor], np.ndarray]:
        """Exemplar features for samples of classes ``labels`` ``[B]``.

        Each sample takes ``count`` distinct clips of its class (with repetition only when the
        class has fewer) and combines their features with equal weights (``mean``) or with
        Dirichlet(1) weights (``interpolate``).

        Returns:
            per stage ``[B, T_i, D_i]`` on the CPU, and the chosen bank indices ``[B, count]``.
        """
        chosen = np.empty((len(labels), count), dtype=np.int64)
        for b, label in enumerate(labels):
            candidates = np.flatnonzero(self.labels == label)
            if len(candidates) == 0:
                raise UserError(f"class {int(label)} has no training clip to take feature-guidance exemplars from")
            chosen[b] = rng.choice(candidates, size=count, replace=len(candidates) < count)
        if mode == "mean":
            weights = np.full((len(labels), count), 1.0 / count)
        else:
            weights = rng.dirichlet(np.ones(count), size=len(labels))
        w = torch.as_tensor(weights, dtype=torch.float32)
        index = torch.as_tensor(chosen)
        return [torch.einsum("bk,bk...->b...", w, stage[index]) for stage in self.features], chosen


# ----------------------------------------------------------------------------- recognizer input
def recognizer_input(positions: Tensor, skeleton: Skeleton, pipeline: ClipPipelineConfig) -> Tensor:
    """The recognizer's evaluation pipeline on fixed-length clips, in torch (differentiable).

    Same result as :func:`mdm.data.transforms.prepare_clip` with ``train=False`` on a clip that
    already has ``pipeline.num_frames`` frames and one person present throughout: centring,
    making upright, then view normalisation. Gradients flow through the positions but not
    through the normalising rotations, which are taken as constants: through them, a gradient
    would move the reference poses' hips and shoulders to turn the whole clip instead of changing
    the motion (with the upright rotation this made classifier guidance ineffective on a toy run).

    Args:
        positions: joint positions ``[B, T, J, 3]`` with ``T = pipeline.num_frames``.
    Returns:
        ``[B, T, J, 3]``.
    """
    if positions.shape[1] != pipeline.num_frames:
        raise UserError(f"generated clips have {positions.shape[1]} frames but the recognizer expects "
                        f"{pipeline.num_frames}; use a generator and recognizer of the same run")
    root = skeleton.root
    if pipeline.centre == "first_frame":
        positions = positions - positions[:, :1, root:root + 1]
    elif pipeline.centre == "per_frame":
        positions = positions - positions[:, :, root:root + 1]
    if not (pipeline.upright or pipeline.view_normalise):
        return positions
    clips = positions.detach().cpu().numpy()
    rotation = np.stack([normalising_rotation(reference_poses(clip, pipeline.view_reference), skeleton,
                                              pipeline.upright, pipeline.view_normalise, pipeline.view_reference)
                         for clip in clips])
    rotation = torch.as_tensor(rotation, dtype=positions.dtype, device=positions.device)
    return torch.einsum("btjc,bkc->btjk", positions, rotation)


class ClassifierGuidance:
    """``x0_guidance`` hook: ``x0 <- x0 + scale * g / rms(g)`` with ``g`` the gradient of the
    recognizer's log-probability of each sample's target class with respect to ``x0``.

    Args:
        generator: decodes normalised features ``[B, T, J, C]`` to positions.
        recognizer: the co-trained recognizer (its model is used in evaluation mode).
        labels: int64 ``[B]`` target classes.
        scale: step in feature standard deviations.
    """

    def __init__(self, generator: MotionGenerator, recognizer: TrainedRecognizer, labels: Tensor, scale: float) -> None:
        self.generator = generator
        self.recognizer = recognizer
        self.labels = labels
        self.scale = scale

    def log_probability(self, x0: Tensor) -> Tensor:
        """``log p(target | x0)`` per sample ``[B]``."""
        clips = recognizer_input(self.generator.decode(x0), self.generator.skeleton, self.recognizer.spec.pipeline)
        logits = self.recognizer.model(clips).logits.float()
        return logits.log_softmax(-1).gather(1, self.labels[:, None]).squeeze(1)

    def __call__(self, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        with torch.enable_grad():
            x = x0.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.log_probability(x).sum(), x)
        rms = grad.flatten(1).square().mean(1).sqrt().clamp_min(1e-12)
        return x0 + self.scale * grad / rms.view(-1, *([1] * (grad.dim() - 1)))


# ----------------------------------------------------------------------------- sampler
class GuidedSampler:
    """Draws guided samples from a co-trained generator.

    Args:
        generator: the co-trained generator.
        recognizer: the co-trained recognizer (needed for classifier guidance).
        bank: exemplar features (needed for feature guidance).
        config: scales and sampling settings.
    """

    def __init__(self, generator: MotionGenerator, recognizer: TrainedRecognizer | None, bank: ExemplarBank | None,
                 config: GuidanceConfig) -> None:
        if config.feature > 0 and bank is None:
            raise ConfigError("feature guidance needs an exemplar bank")
        if config.feature > 0 and not generator.spec.denoiser.feature_dims:
            raise UserError("feature guidance needs a generator trained with recognizer features "
                            "(this one was trained without); leave 'feature' out of --guidance")
        if config.classifier > 0 and recognizer is None:
            raise ConfigError("classifier guidance needs a recognizer")
        self.generator = generator
        self.recognizer = recognizer
        self.bank = bank
        self.config = config

    def _model_fn(self, labels: Tensor, features: list[Tensor] | None):
        """``(x_t, t) -> x0`` combining the predictions as in the module docstring."""
        denoiser, config = self.generator.denoiser, self.config

        def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
            batch = len(labels)
            if config.cfg == 1.0:
                cond = x0 = denoiser(x_t, t, labels, features=features)
            else:
                doubled = None if features is None else [torch.cat([f, f]) for f in features]
                uncond = torch.arange(2 * batch, device=x_t.device) >= batch
                both = denoiser(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([labels, labels]),
                                features=doubled, force_uncond=uncond)
                cond, null = both[:batch], both[batch:]
                x0 = cond + (config.cfg - 1.0) * (cond - null)
            if features is not None and config.feature != 1.0:
                x0 = x0 + (config.feature - 1.0) * (cond - denoiser(x_t, t, labels))
            return x0

        return model_fn

    @torch.no_grad()
    def sample(self, labels: Tensor, *, noise: torch.Generator, rng: np.random.Generator,
               progress: bool = False) -> tuple[Tensor, np.ndarray | None]:
        """Guided samples of classes ``labels``.

        Args:
            labels: int64 ``[B]``.
            noise: seeds the initial and per-step noise.
            rng: draws the exemplars.
        Returns:
            joint positions ``[B, T, J, 3]`` and the exemplar indices into the bank ``[B, k]``
            (None without feature guidance).
        """
        generator, config = self.generator, self.config
        device = generator.device
        labels = labels.to(device)
        features, chosen = None, None
        if config.feature > 0:
            assert self.bank is not None
            drawn, chosen = self.bank.draw(labels.cpu().numpy(), config.exemplars, config.exemplar_mode, rng)
            features = [f.to(device) for f in drawn]
        hook = None
        if config.classifier > 0:
            assert self.recognizer is not None
            hook = ClassifierGuidance(generator, self.recognizer, labels, config.classifier)
        representation = generator.representation
        shape = (len(labels), generator.spec.num_frames, representation.num_slots, representation.num_channels)
        x0 = sample(self._model_fn(labels, features), generator.scheduler, shape, num_inference_steps=config.steps,
                    method=config.method, eta=config.eta, generator=noise, device=device, x0_guidance=hook,
                    progress=progress)
        return generator.decode(x0), chosen

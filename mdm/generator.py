"""A trained motion generator as one object: denoiser, scheduler, representation, statistics.

Saved as a folder (``<run>/generator/``) that sampling and guided generation load without
the training config::

    denoiser.safetensors      (EMA) weights of the denoiser
    norm_stats.safetensors    feature normalisation statistics
    generator.yaml            denoiser and diffusion configs, representation, skeleton,
                              class names, frames per clip, frame rate, source
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mdm.data.dataset import MotionDataset
from mdm.data.transforms import ClipPipelineConfig
from mdm.diffusion.sampling import sample
from mdm.diffusion.scheduler import DiffusionScheduler
from mdm.errors import ConfigError, UserError
from mdm.model_folder import load_module_weights, read_model_folder, save_model_folder
from mdm.models.denoiser import DenoiserConfig, MotionDenoiser
from mdm.representation import NormStats, PositionRepresentation
from mdm.skeleton import Skeleton

SPEC_FILE = "generator.yaml"
WEIGHTS_FILE = "denoiser.safetensors"
STATS_FILE = "norm_stats.safetensors"


@dataclass
class DiffusionConfig:
    """The noise process (MDM: 1000 steps, cosine schedule).

    Attributes:
        num_train_timesteps: steps of the forward process.
        beta_schedule: ``cosine`` or ``linear``.
    """

    num_train_timesteps: int = 1000
    beta_schedule: str = "cosine"

    def make_scheduler(self) -> DiffusionScheduler:
        return DiffusionScheduler(self.num_train_timesteps, self.beta_schedule)


@dataclass
class SamplingConfig:
    """How samples are drawn: DDIM with 50 steps by default (DDPM with all steps is MDM's).

    ``guidance_scale`` is the classifier-free scale on the class, ``style_guidance_scale`` the one on
    the style of a style-conditioned generator (1 = none, each).
    """

    steps: int = 50
    method: str = "ddim"
    eta: float = 0.0
    guidance_scale: float = 1.0
    style_guidance_scale: float = 1.0


@dataclass
class GeneratorSpec:
    """Everything besides weights that a saved generator needs (``pipeline``: how its training clips were
    prepared, what an edited input clip goes through; None in folders written before it was recorded;
    ``style_names``: the styles of a style-conditioned generator, empty otherwise)."""

    denoiser: DenoiserConfig
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    class_names: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    joint_names: list[str] = field(default_factory=list)
    skeleton_name: str = "custom"
    up_axis: int = 1
    num_frames: int = 60
    fps: float = 30.0
    source: str = ""
    pipeline: ClipPipelineConfig | None = None
    style_names: list[str] = field(default_factory=list)


class MotionGenerator:
    """Draws class-conditioned motions as joint positions.

    Args:
        spec: configs and metadata.
        denoiser: the trained denoiser (usually the EMA copy).
        stats: feature normalisation statistics of the training data.
    """

    def __init__(self, spec: GeneratorSpec, denoiser: MotionDenoiser, stats: NormStats) -> None:
        self.spec = spec
        self.denoiser = denoiser.eval()
        self.stats = stats
        self.skeleton = Skeleton.from_parents(spec.parents, spec.joint_names, spec.skeleton_name, spec.up_axis)
        self.representation = PositionRepresentation(self.skeleton)
        self.scheduler = spec.diffusion.make_scheduler()

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Positions ``[B, T, J, 3]`` of normalised features ``[B, T, J, C]``."""
        return self.representation.decode(self.stats.denormalize(x0))

    def class_indices(self, names: list[str]) -> list[int]:
        """Class indices of class names; an unknown name is a UserError listing the known ones."""
        return _indices(names, self.spec.class_names, "class")

    def style_indices(self, names: list[str]) -> list[int]:
        """Style indices of style names; a UserError for an unknown name or a generator without styles."""
        if not self.spec.style_names:
            raise UserError("this generator was not trained with a style condition (train with condition_on_style=true)")
        return _indices(names, self.spec.style_names, "style")

    @torch.no_grad()
    def generate(
        self,
        labels: torch.Tensor,
        sampling: SamplingConfig,
        *,
        generator: torch.Generator | None = None,
        features: list[torch.Tensor] | None = None,
        styles: torch.Tensor | None = None,
        x0_guidance: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Sample motions of the given classes.

        Args:
            labels: int64 ``[B]`` class indices.
            sampling: steps, method, eta and classifier-free guidance scales (1 = none).
            generator: seeds the initial noise and DDPM/DDIM noise.
            features: recognizer features ``[B, T_i, D_i]`` injected into the denoiser.
            styles: int64 ``[B]`` style indices for a style-conditioned generator; None = any style.
            x0_guidance: ``(x0, x_t, t) -> x0`` applied after each denoiser call (classifier guidance).
        Returns:
            joint positions ``[B, T, J, 3]`` with ``T = spec.num_frames``.
        """
        labels = labels.to(self.device)
        styles = None if styles is None else styles.to(self.device)
        shape = (len(labels), self.spec.num_frames, self.representation.num_slots, self.representation.num_channels)
        unguided = sampling.guidance_scale == 1.0 and (styles is None or sampling.style_guidance_scale == 1.0)

        def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if unguided:
                return self.denoiser(x_t, t, labels, features=features, styles=styles)
            return self.denoiser.forward_with_cfg(x_t, t, labels, sampling.guidance_scale, features=features,
                                                  styles=styles, style_guidance_scale=sampling.style_guidance_scale)

        x0 = sample(model_fn, self.scheduler, shape, num_inference_steps=sampling.steps, method=sampling.method,
                    eta=sampling.eta, generator=generator, device=self.device, x0_guidance=x0_guidance,
                    progress=progress)
        return self.decode(x0)

    def save(self, directory: str | Path) -> Path:
        """Write the generator folder (see the module docstring)."""
        directory = save_model_folder(directory, self.spec, SPEC_FILE, {WEIGHTS_FILE: self.denoiser})
        self.stats.save(directory / STATS_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: torch.device | str = "cpu") -> MotionGenerator:
        """Load a generator folder written by :meth:`save` (or a run folder holding ``generator/``)."""
        directory, spec = read_model_folder(directory, "generator", GeneratorSpec, SPEC_FILE,
                                            "mdm_train.py or mdm_imdm_cotrain.py")
        denoiser = MotionDenoiser(spec.denoiser)
        load_module_weights(denoiser, directory / WEIGHTS_FILE)
        return cls(spec, denoiser.to(device), NormStats.load(directory / STATS_FILE))


def _indices(names: list[str], known: list[str], what: str) -> list[int]:
    """Positions of ``names`` in ``known``; an unknown name is a UserError listing the known ones."""
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UserError(f"unknown {what} name(s) {unknown}; known {what} names: {', '.join(known)}")
    return [known.index(name) for name in names]


def generator_spec_for(dataset: MotionDataset, denoiser: DenoiserConfig, diffusion: DiffusionConfig,
                       pipeline: ClipPipelineConfig) -> GeneratorSpec:
    """The spec of a generator trained on ``dataset``'s clips prepared by ``pipeline``."""
    num_frames = pipeline.num_frames
    if num_frames > denoiser.max_frames:
        raise ConfigError(f"num_frames {num_frames} exceeds the denoiser's max_frames {denoiser.max_frames}")
    skeleton = dataset.skeleton
    return GeneratorSpec(
        denoiser=denoiser,
        diffusion=diffusion,
        class_names=list(dataset.class_names),
        parents=list(skeleton.parents),
        joint_names=list(skeleton.joint_names),
        skeleton_name=skeleton.name,
        up_axis=skeleton.up_axis,
        num_frames=num_frames,
        fps=float(dataset.fps or 30.0),
        source=dataset.source,
        pipeline=pipeline,
        style_names=list(dataset.style_names or []) if denoiser.num_styles else [],
    )


def samples_to_dataset(positions: np.ndarray, labels: np.ndarray, spec: GeneratorSpec, skeleton: Skeleton,
                       source: str, styles: np.ndarray | None = None) -> MotionDataset:
    """A dataset of generated clips ``[N, T, J, 3]`` (for writing as an archive); ``styles`` ``[N]``
    those they were drawn for, by a style-conditioned generator."""
    return MotionDataset(
        clips=[clip.astype(np.float32) for clip in positions],
        labels=labels,
        class_names=spec.class_names,
        skeleton=skeleton,
        clip_ids=[f"gen_{i:06d}" for i in range(len(positions))],
        fps=spec.fps,
        source=source,
        styles=styles,
        style_names=None if styles is None else spec.style_names,
    )

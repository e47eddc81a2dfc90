"""Denoising networks of the motion diffusion model."""

from mdm.models.denoiser import (
    PRESETS,
    DenoiserConfig,
    FeatureAdapter,
    MotionDenoiser,
    count_parameters,
    denoiser_preset,
    sinusoidal_embedding,
)

__all__ = [
    "PRESETS",
    "DenoiserConfig",
    "FeatureAdapter",
    "MotionDenoiser",
    "count_parameters",
    "denoiser_preset",
    "sinusoidal_embedding",
]

"""Diffusion noise scheduling (betas, forward process, posterior, DDPM/DDIM steps) and sampling."""

from mdm.diffusion.sampling import classifier_free_guidance, sample
from mdm.diffusion.scheduler import DiffusionScheduler, NoiseSchedule, SchedulerStepOutput

__all__ = ["DiffusionScheduler", "NoiseSchedule", "SchedulerStepOutput", "classifier_free_guidance", "sample"]

"""Motion editing with a trained generator: in-betweening, prefix continuation, body-part editing, long sequences.

The known part of a clip is imposed on the denoiser's clean-motion prediction at every sampling step,
the x0-space form of MDM's inpainting: where the mask is set, the prediction is replaced by the
input's (normalised) features before the sampler's step, after any guidance. The samplers' last step
returns the prediction, so the known part comes out exactly as it went in, and the rest is generated
to agree with it. Masks are ``[T, J]`` over frames and the representation's slots (joints; the root
slot holds the root's trajectory).

* :func:`inbetween_mask`: keep the first and the last ``k`` frames; :func:`prefix_mask`: keep the first
  ``k`` (continuation); :func:`joints_mask`: keep chosen joints on every frame, and the root's
  trajectory with them, so that they keep their positions (body-part editing, e.g. keep the legs and
  regenerate the upper body).
* :func:`generate_long`: windows generated in turn, each starting with the last ``overlap`` frames of
  the one before kept as a prefix, so the seams are continuous; a class per window.

Clips are in the generator's own space: prepared by its training pipeline (:func:`prepare_input`).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from mdm.data.transforms import prepare_clip
from mdm.diffusion.sampling import X0Guidance
from mdm.errors import ConfigError, UserError
from mdm.generator import MotionGenerator, SamplingConfig
from mdm.skeleton import Skeleton

logger = logging.getLogger("mdm.editing")


def inbetween_mask(num_frames: int, num_joints: int, keep: int) -> torch.Tensor:
    """Bool ``[T, J]``: the first and the last ``keep`` frames."""
    if not 1 <= keep <= num_frames // 2 - 1:
        raise ConfigError(f"in-betweening keeps 1 to {num_frames // 2 - 1} frames at each end of {num_frames}, "
                          f"got {keep}")
    mask = torch.zeros(num_frames, num_joints, dtype=torch.bool)
    mask[:keep] = True
    mask[-keep:] = True
    return mask


def prefix_mask(num_frames: int, num_joints: int, keep: int) -> torch.Tensor:
    """Bool ``[T, J]``: the first ``keep`` frames."""
    if not 1 <= keep <= num_frames - 1:
        raise ConfigError(f"a prefix keeps 1 to {num_frames - 1} of the {num_frames} frames, got {keep}")
    mask = torch.zeros(num_frames, num_joints, dtype=torch.bool)
    mask[:keep] = True
    return mask


def joints_mask(num_frames: int, skeleton: Skeleton, names: list[str]) -> torch.Tensor:
    """Bool ``[T, J]``: the named joints and the root (its trajectory) on every frame."""
    unknown = [name for name in names if name not in skeleton.joint_names]
    if unknown:
        raise ConfigError(f"unknown joint(s) {unknown}; the skeleton {skeleton.name} has {', '.join(skeleton.joint_names)}")
    kept = {skeleton.joint_names.index(name) for name in names} | {skeleton.root}
    if len(kept) == skeleton.num_joints:
        raise ConfigError("every joint would be kept: nothing is left to generate")
    mask = torch.zeros(num_frames, skeleton.num_joints, dtype=torch.bool)
    mask[:, sorted(kept)] = True
    return mask


def prepare_input(generator: MotionGenerator, clip: np.ndarray) -> np.ndarray:
    """A clip ``[T, J, 3]`` put into the generator's space by its training pipeline (evaluation mode), as
    float32 ``[num_frames, J, 3]``; a generator folder that does not record its pipeline takes clips of
    exactly ``num_frames`` frames as they are."""
    spec = generator.spec
    if spec.pipeline is None:
        if len(clip) != spec.num_frames:
            raise UserError(f"this generator folder does not record how its training clips were prepared; give a "
                            f"clip of exactly {spec.num_frames} frames in its space (for example one it generated)")
        logger.warning("the generator folder records no clip pipeline: the clip is taken as it is")
        return np.asarray(clip, dtype=np.float32)
    prepared, valid = prepare_clip(clip, generator.skeleton, spec.pipeline, train=False, rng=np.random.default_rng(0))
    if valid < spec.num_frames:
        raise UserError(f"the clip has {valid} frames; the generator makes {spec.num_frames}")
    return prepared


def edit(generator: MotionGenerator, motion: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
         sampling: SamplingConfig, *, rng: torch.Generator | None = None,
         guidance: X0Guidance | None = None) -> torch.Tensor:
    """Positions ``[B, T, J, 3]``: ``motion`` ``[B, T, J, 3]`` (generator space) kept where ``mask`` (``[T, J]``
    or ``[B, T, J]``) is set, the rest generated for classes ``labels`` ``[B]``."""
    spec = generator.spec
    if tuple(motion.shape[1:]) != (spec.num_frames, len(spec.parents), 3):
        raise ConfigError(f"clips to edit must be [B, {spec.num_frames}, {len(spec.parents)}, 3], "
                          f"got {list(motion.shape)}")
    motion = motion.to(generator.device, torch.float32)
    up = spec.up_axis
    start = motion[:, :1, generator.skeleton.root].clone()
    start[..., up] = 0.0  # the representation keeps the height, drops the horizontal start
    known = generator.stats.normalize(generator.representation.encode(motion))
    keep = mask.to(generator.device).expand(known.shape[:3])[..., None]

    def impose(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if guidance is not None:
            x0 = guidance(x0, x_t, t)
        return torch.where(keep, known, x0)

    generated = generator.generate(labels, sampling, generator=rng, x0_guidance=impose)
    return generated + start[:, :, None]


def generate_long(generator: MotionGenerator, labels: list[int], overlap: int, sampling: SamplingConfig, *,
                  rng: torch.Generator | None = None) -> torch.Tensor:
    """Positions ``[T, J, 3]`` of ``len(labels)`` windows, window ``i`` of class ``labels[i]``; each window
    after the first starts with the previous one's last ``overlap`` frames, kept exactly, so
    ``T = len(labels) * (num_frames - overlap) + overlap``."""
    frames = generator.spec.num_frames
    mask = prefix_mask(frames, len(generator.spec.parents), overlap)
    device = generator.device
    sequence = generator.generate(torch.tensor(labels[:1], device=device), sampling, generator=rng)[0]
    for label in labels[1:]:
        window = torch.zeros_like(sequence[:frames])
        window[:overlap] = sequence[-overlap:]
        following = edit(generator, window[None], mask, torch.tensor([label], device=device), sampling, rng=rng)[0]
        sequence = torch.cat([sequence, following[overlap:]])
    return sequence

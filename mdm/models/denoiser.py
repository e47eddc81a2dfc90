"""The MDM denoiser: a transformer encoder that predicts the clean motion x0 from x_t.

Layout as in MDM (Tevet et al., 2023): each frame's ``J * C`` features are projected to one
token; one extra token carrying the diffusion step and the action class is prepended; a stack
of transformer encoder layers runs over ``1 + T`` tokens; the frame tokens are projected back.
Recognizer (I-MDM) features can be added to the frame tokens between layers through small
zero-initialised adapters; the hook is a plain tensor argument, this module imports nothing
from ``imdm``.

The noise scheduler is separate (``mdm.diffusion``): for the ``paper`` preset MDM's HumanAct12
configuration uses 1000 diffusion steps with the cosine schedule and predicts x0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdm.config import from_dict
from mdm.errors import ConfigError
from mdm.models.dropout import Dropout
from mdm.models.transformer import EncoderLayer


@dataclass
class DenoiserConfig:
    """Architecture of :class:`MotionDenoiser`.

    Attributes:
        num_joints: ``J`` of the motion features ``[B, T, J, C]``.
        num_channels: ``C`` of the motion features (3 for positions, 6 for 6D rotations).
        num_classes: number of action classes ``K``; labels lie in ``[0, K)``.
        d_model: transformer width.
        num_layers: number of transformer encoder layers.
        num_heads: attention heads (``d_model`` must be divisible by it).
        ff_dim: hidden width of each layer's feed-forward block.
        dropout: dropout inside the layers and after the positional encoding.
        max_frames: longest ``T`` the model accepts (size of the positional table).
        activation: feed-forward activation.
        norm_first: pre-norm layers (with a final LayerNorm) if True; post-norm as MDM if False.
        positional_encoding: fixed sinusoidal table (as MDM) or a learned table.
        cond_drop_prob: probability, per training sample, of replacing the class by the null
            class (classifier-free guidance training; 0.1 as MDM).
        num_styles: number of styles ``S`` of an optional second condition (a clip's performance
            style); 0 = none. Its embedding is added to the class's in the condition token.
        style_drop_prob: probability, per training sample, of replacing the style by the null style,
            drawn independently of the class's, so guidance can act on each condition apart.
        feature_dims: width ``D_i`` of each injected recognizer feature.
        feature_layers: index of the layer that receives feature ``i`` (added to the frame
            tokens' hidden states before that layer runs), in ``[0, num_layers)``.
        feature_drop_prob: probability, per training sample, of dropping all injected features,
            so the model also works without them (label-only sampling) and feature guidance can
            extrapolate from the featureless prediction. 0.5: at 0.1 the NW-UCLA generator made one
            class-agnostic motion without features (docs/results.md).
    """

    num_joints: int
    num_channels: int
    num_classes: int
    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.1
    max_frames: int = 196
    activation: Literal["gelu", "relu"] = "gelu"
    norm_first: bool = True
    positional_encoding: Literal["sinusoidal", "learned"] = "sinusoidal"
    cond_drop_prob: float = 0.1
    num_styles: int = 0
    style_drop_prob: float = 0.1
    feature_dims: list[int] = field(default_factory=list)
    feature_layers: list[int] = field(default_factory=list)
    feature_drop_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("num_joints", "num_channels", "num_classes", "d_model", "num_layers", "num_heads",
                     "ff_dim", "max_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"denoiser {name} must be at least 1, got {getattr(self, name)}")
        if self.d_model % self.num_heads:
            raise ConfigError(f"denoiser d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        if self.num_styles < 0:
            raise ConfigError(f"denoiser num_styles must be 0 (no style) or more, got {self.num_styles}")
        for name in ("dropout", "cond_drop_prob", "style_drop_prob", "feature_drop_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"denoiser {name} must lie in [0, 1), got {getattr(self, name)}")
        if self.activation not in ("gelu", "relu"):
            raise ConfigError(f"denoiser activation must be 'gelu' or 'relu', got {self.activation!r}")
        if self.positional_encoding not in ("sinusoidal", "learned"):
            raise ConfigError(f"denoiser positional_encoding must be 'sinusoidal' or 'learned', "
                              f"got {self.positional_encoding!r}")
        if len(self.feature_dims) != len(self.feature_layers):
            raise ConfigError(f"denoiser feature_dims has {len(self.feature_dims)} entries but feature_layers "
                              f"has {len(self.feature_layers)}; give one layer per injected feature")
        if any(dim < 1 for dim in self.feature_dims):
            raise ConfigError(f"denoiser feature_dims must be positive, got {self.feature_dims}")
        if any(not 0 <= layer < self.num_layers for layer in self.feature_layers):
            raise ConfigError(f"denoiser feature_layers {self.feature_layers} must lie in [0, {self.num_layers})")


PRESETS: dict[str, dict[str, Any]] = {
    # A few seconds of training on a CPU: unit tests and smoke runs.
    "tiny": dict(d_model=64, num_layers=2, num_heads=4, ff_dim=128, norm_first=True),
    # The default: about 2.3 M parameters and 8x fewer FLOPs per token than `paper`; measured
    # side by side on 2 CPU threads, its training step (batch 64 x 60 frames) takes about 1/6
    # of `paper`'s (about 0.4 s where `paper` takes the published code's 2.4 s): a thousand
    # steps in minutes (`benchmarks/mdm_suite.py`).
    "cpu": dict(d_model=256, num_layers=4, num_heads=4, ff_dim=512, norm_first=True),
    # MDM's HumanAct12 configuration: 8 post-norm layers, 512 wide, 4 heads, feed-forward 1024,
    # GELU, dropout 0.1, sinusoidal positions, condition dropout 0.1 (about 17.5 M parameters).
    "paper": dict(d_model=512, num_layers=8, num_heads=4, ff_dim=1024, norm_first=False),
}
"""Architecture presets; the data shapes (joints, channels, classes) come from the caller."""


def denoiser_preset(name: str, **overrides: Any) -> DenoiserConfig:
    """The config of preset ``name`` (``tiny``, ``cpu``, ``paper``) with ``overrides`` applied.

    ``num_joints``, ``num_channels`` and ``num_classes`` must be among the overrides; unknown
    keys and wrong types raise ConfigError.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown denoiser preset {name!r}; presets: {', '.join(PRESETS)}")
    missing = [key for key in ("num_joints", "num_channels", "num_classes") if key not in overrides]
    if missing:
        raise ConfigError(f"denoiser preset {name!r} needs {', '.join(missing)} (the data's shape)")
    return from_dict(DenoiserConfig, {**PRESETS[name], **overrides}, where=f"denoiser preset {name!r}")


def sinusoidal_embedding(positions: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding as MDM's table: ``[..., 2i] = sin(p w_i)``, ``[..., 2i+1] = cos(p w_i)``.

    Args:
        positions: float or int ``[N]`` (frame indices or diffusion steps).
        dim: even embedding width.
    Returns:
        float32 ``[N, dim]``.
    """
    freqs = torch.exp(torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32)
                      * (-math.log(max_period) / dim))
    angles = positions.to(torch.float32)[:, None] * freqs[None, :]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(len(positions), dim)


class FeatureAdapter(nn.Module):
    """Maps one recognizer feature ``[B, T_i, D_i]`` to frame-token offsets ``[B, T, d_model]``.

    LayerNorm, Linear ``D_i -> d_model``, GELU, Linear ``d_model -> d_model`` (zero-initialised,
    so an untrained adapter adds exactly zero), then linear interpolation along time from ``T_i``
    to ``T`` (``align_corners=False``: feature step ``k`` covers frames ``[k T / T_i, (k+1) T / T_i)``).
    """

    def __init__(self, feature_dim: int, d_model: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(feature_dim), nn.Linear(feature_dim, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, feature: Tensor, num_frames: int) -> Tensor:
        """``[B, T_i, D_i]`` -> ``[B, num_frames, d_model]``."""
        projected = self.net(feature)
        if projected.shape[1] == num_frames:
            return projected
        resized = F.interpolate(projected.transpose(1, 2), size=num_frames, mode="linear", align_corners=False)
        return resized.transpose(1, 2)


class MotionDenoiser(nn.Module):
    """MDM transformer denoiser: ``(x_t, t, class) -> x0``, optionally fed recognizer features."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        d_model = config.d_model
        frame_dim = config.num_joints * config.num_channels
        self.input_proj = nn.Linear(frame_dim, d_model)
        self.time_mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        # Row num_classes is the learned null class of classifier-free guidance.
        self.class_embedding = nn.Embedding(config.num_classes + 1, d_model)
        # Row num_styles is the null style (also used when no style is given).
        self.style_embedding = nn.Embedding(config.num_styles + 1, d_model) if config.num_styles else None
        if config.positional_encoding == "learned":
            self.positions = nn.Parameter(torch.randn(config.max_frames + 1, d_model) * 0.02)
        else:
            table = sinusoidal_embedding(torch.arange(config.max_frames + 1), d_model)
            self.register_buffer("positions", table, persistent=False)
        self.input_dropout = Dropout(config.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, config.num_heads, config.ff_dim, config.dropout, config.activation, config.norm_first)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(d_model) if config.norm_first else nn.Identity()
        self.output_proj = nn.Linear(d_model, frame_dim)
        self.adapters = nn.ModuleList(FeatureAdapter(dim, d_model) for dim in config.feature_dims)

    def forward(
        self,
        x_t: Tensor,
        timesteps: Tensor,
        labels: Tensor,
        *,
        mask: Tensor | None = None,
        features: list[Tensor] | None = None,
        styles: Tensor | None = None,
        force_uncond: bool | Tensor = False,
    ) -> Tensor:
        """Predict the clean motion.

        In training mode each sample's class is replaced by the null class with probability
        ``cond_drop_prob``, its style by the null style with probability ``style_drop_prob``, and
        its features are dropped with probability ``feature_drop_prob`` (drawn from torch's global
        generator, seeded by the training loop).

        Args:
            x_t: noisy motion ``[B, T, J, C]``.
            timesteps: int64 ``[B]`` diffusion steps.
            labels: int64 ``[B]`` action classes in ``[0, num_classes)``.
            mask: bool ``[B, T]``, True = valid frame; padded frames are hidden from attention
                (their own outputs are meaningless). None = all frames valid.
            features: one tensor ``[B, T_i, D_i]`` per configured feature, spanning the same T
                frames as ``x_t``; None = no injection.
            styles: int64 ``[B]`` styles in ``[0, num_styles)`` of a style-conditioned model; None =
                the null style for every sample.
            force_uncond: True, or bool ``[B]``: use the null class (and the null style) for those samples.
        Returns:
            predicted x0 ``[B, T, J, C]``.
        """
        batch = x_t.shape[0]
        uncond = torch.as_tensor(force_uncond, dtype=torch.bool, device=x_t.device).expand(batch)
        null_style = self._null_styles(styles, batch, x_t.device) | uncond
        keep_features = None
        if self.training and self.config.cond_drop_prob > 0:
            uncond = uncond | (torch.rand(batch, device=x_t.device) < self.config.cond_drop_prob)
        if self.training and self.style_embedding is not None and self.config.style_drop_prob > 0:
            null_style = null_style | (torch.rand(batch, device=x_t.device) < self.config.style_drop_prob)
        if self.training and self.config.feature_drop_prob > 0 and features is not None:
            keep_features = torch.rand(batch, device=x_t.device) >= self.config.feature_drop_prob
        return self._denoise(x_t, timesteps, labels, uncond, mask, features, keep_features, styles, null_style)

    def forward_with_cfg(
        self,
        x_t: Tensor,
        timesteps: Tensor,
        labels: Tensor,
        guidance_scale: float,
        *,
        mask: Tensor | None = None,
        features: list[Tensor] | None = None,
        styles: Tensor | None = None,
        style_guidance_scale: float = 1.0,
    ) -> Tensor:
        """Classifier-free guidance from one batched forward, on the class and, with ``styles``, on the style.

        Without styles: ``uncond + scale * (cond - uncond)``. With styles, each condition apart (as
        compositional guidance): ``uncond + scale * (class - uncond) + style_scale * (class+style - class)``,
        where ``class`` keeps the null style and ``uncond`` nulls both. The branches are
        concatenated on the batch; features, if any, reach every branch. No condition or feature
        dropout is applied, whatever the mode. Shapes as :meth:`forward`; returns ``[B, T, J, C]``.
        """
        batch = x_t.shape[0]
        self._check_styles(styles)
        branches = 2 if styles is None else 3
        branch = torch.arange(branches * batch, device=x_t.device) // batch
        repeated_features = None if features is None else [f.repeat(branches, 1, 1) for f in features]
        repeated_styles = None if styles is None else styles.repeat(branches)
        x0 = self._denoise(
            x_t.repeat(branches, 1, 1, 1), timesteps.repeat(branches), labels.repeat(branches), branch == 0,
            None if mask is None else mask.repeat(branches, 1), repeated_features, None, repeated_styles,
            branch < 2 if styles is not None else torch.ones_like(branch, dtype=torch.bool),
        )
        uncond_x0, class_x0 = x0[:batch], x0[batch:2 * batch]
        guided = uncond_x0 + guidance_scale * (class_x0 - uncond_x0)
        if styles is None:
            return guided
        return guided + style_guidance_scale * (x0[2 * batch:] - class_x0)

    def _denoise(
        self,
        x_t: Tensor,
        timesteps: Tensor,
        labels: Tensor,
        uncond: Tensor,
        mask: Tensor | None,
        features: list[Tensor] | None,
        keep_features: Tensor | None,
        styles: Tensor | None,
        null_style: Tensor,
    ) -> Tensor:
        """The network itself; ``uncond``, ``null_style`` bool ``[B]``, ``keep_features`` bool ``[B]``
        or None (keep all)."""
        self._check_input(x_t)
        batch, frames, joints, channels = x_t.shape
        classes = torch.where(uncond, torch.full_like(labels, self.config.num_classes), labels)
        cond_token = self.time_mlp(sinusoidal_embedding(timesteps, self.config.d_model).to(x_t.dtype))
        cond_token = cond_token + self.class_embedding(classes)
        if self.style_embedding is not None:
            null = torch.full_like(classes, self.config.num_styles)
            cond_token = cond_token + self.style_embedding(null if styles is None else torch.where(null_style, null, styles))
        tokens = torch.cat([cond_token[:, None], self.input_proj(x_t.reshape(batch, frames, joints * channels))], 1)
        hidden = self.input_dropout(tokens + self.positions[: frames + 1].to(x_t.dtype))
        padding = None
        if mask is not None:
            padding = torch.cat([torch.zeros(batch, 1, dtype=torch.bool, device=mask.device), ~mask.bool()], dim=1)
        injections = self._injections(features, frames, keep_features)
        for index, layer in enumerate(self.layers):
            if index in injections:
                hidden = hidden + F.pad(injections[index], (0, 0, 1, 0))
            hidden = layer(hidden, padding)
        out = self.output_proj(self.final_norm(hidden[:, 1:]))
        return out.reshape(batch, frames, joints, channels)

    def _null_styles(self, styles: Tensor | None, batch: int, device: torch.device) -> Tensor:
        """Bool ``[B]``: True where the null style is used (all where ``styles`` is None)."""
        self._check_styles(styles)
        return torch.full((batch,), styles is None, dtype=torch.bool, device=device)

    def _check_styles(self, styles: Tensor | None) -> None:
        """ValueError for styles given to a model without a style condition."""
        if styles is not None and self.style_embedding is None:
            raise ValueError("styles were given to a denoiser without a style condition (num_styles 0)")

    def _check_input(self, x_t: Tensor) -> None:
        """ValueError unless ``x_t`` is ``[B, T, J, C]`` with this model's J, C and T <= max_frames."""
        config = self.config
        if x_t.ndim != 4 or tuple(x_t.shape[2:]) != (config.num_joints, config.num_channels):
            raise ValueError(f"denoiser expects x_t [B, T, {config.num_joints}, {config.num_channels}], "
                             f"got {list(x_t.shape)}")
        if x_t.shape[1] > config.max_frames:
            raise ValueError(f"denoiser max_frames is {config.max_frames}, got {x_t.shape[1]} frames")

    def _injections(self, features: list[Tensor] | None, frames: int, keep: Tensor | None) -> dict[int, Tensor]:
        """Sum of adapted features per receiving layer: ``{layer: [B, T, d_model]}``."""
        if features is None:
            return {}
        dims = self.config.feature_dims
        if len(features) != len(dims):
            raise ValueError(f"denoiser was configured for {len(dims)} injected features, got {len(features)}")
        injections: dict[int, Tensor] = {}
        for index, (feature, adapter, layer) in enumerate(zip(features, self.adapters, self.config.feature_layers)):
            if feature.ndim != 3 or feature.shape[-1] != dims[index]:
                raise ValueError(f"injected feature {index} must be [B, T_{index}, {dims[index]}], "
                                 f"got {list(feature.shape)}")
            offset = adapter(feature, frames)
            if keep is not None:
                offset = offset * keep[:, None, None].to(offset.dtype)
            injections[layer] = injections[layer] + offset if layer in injections else offset
        return injections


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

"""The I-MDM recognizer: skeleton graph stages on joint tokens, then transformer stages on frame tokens.

Layout (docs/architecture.md): input ``[B, T, J, C]`` for one person or ``[B, M, T, J, C]`` for several.

Design, stage by stage (``joint_stages`` leading stages keep the joint axis, the rest do not):

* Input streams (:mod:`mdm.data.streams`): by default joint positions, bones (joint minus
  parent joint) and motion (frame difference), concatenated on channels, normalised per joint
  and channel (BatchNorm, as ST-GCN's data BN); ``temporal_patch`` consecutive frames of a
  joint are embedded together by one linear map shared by all joints, plus a learned joint
  embedding.
* Joint stages ``[N, T, J, C]``: blocks of (a) graph mixing across joints with learnable
  adjacencies initialised from the skeleton (self, parent, children, whole body) and (b) a
  convolutional feed-forward whose depthwise temporal convolution mixes neighbouring frames.
  Weights are shared over joints, the inductive bias that lets graph models generalise across views.
* Frame stages ``[N, T, D]``: the joints of each frame are flattened into one token; blocks of
  (a) multi-head self-attention over frames and (b) the same convolutional feed-forward, which
  also gives the tokens their relative temporal position (no positional embedding needed).
* From the last joint stage to the first frame stage a linear map takes the ``J * C`` values
  of a frame to ``D``; between other consecutive stages the time axis is halved (strided
  depthwise temporal convolution followed by a linear change of width).
* Every stage ends in a LayerNorm; its output pooled over joints (joint stages) and over persons
  is a feature ``[B, T_i, D_i]`` for the MDM denoiser; the last stage pooled over time feeds a
  linear classifier.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdm.data.streams import STREAMS, input_streams
from mdm.errors import ConfigError
from mdm.models.dropout import Dropout
from mdm.models.transformer import attention
from mdm.skeleton import check_parents, load_skeleton

GRAPH_SUBSETS = 4
"""Adjacency subsets of a graph mixer: self, parent, children, whole body."""


def _kinect_v1_parents() -> tuple[int, ...]:
    return load_skeleton("kinect_v1").parents


@dataclass(frozen=True)
class RecognizerConfig:
    """Shape and size of a :class:`Recognizer` (defaults: NW-UCLA, Kinect v1, ``default`` preset).

    Attributes:
        num_joints: ``J``.
        in_channels: ``C`` of the input, 3 for positions.
        num_classes: ``K``.
        num_frames: ``T`` of every input clip (the data pipeline resamples clips to it).
        num_persons: ``M`` of a ``[B, M, T, J, C]`` input; a ``[B, T, J, C]`` input is one person.
        parents: parent joint of each joint (-1 for the root), for the bone stream and the
            initial adjacency of the graph mixers.
        streams: which of ``joint``, ``bone``, ``motion``, ``bone_motion`` are computed as input channels.
        widths: per stage, the token width (per joint in joint stages, per frame after).
        depths: per stage, the number of blocks.
        ff: per stage, the hidden width of the convolutional feed-forward.
        joint_stages: how many leading stages keep the joint axis (at least 1).
        temporal_patch: consecutive frames embedded together into one token (``num_frames``
            must be a multiple).
        heads: attention heads of the frame stages.
        temporal_kernel: odd kernel of the depthwise temporal convolutions.
        dropout: dropout on attention, feed-forward outputs and before the classifier.
        drop_path: stochastic depth of the last block (linearly from 0 over the blocks).
    """

    num_joints: int = 20
    in_channels: int = 3
    num_classes: int = 10
    num_frames: int = 52
    num_persons: int = 1
    parents: tuple[int, ...] = field(default_factory=_kinect_v1_parents)
    streams: tuple[str, ...] = ("joint", "bone", "motion")
    widths: tuple[int, ...] = (48, 192, 256)
    depths: tuple[int, ...] = (2, 2, 2)
    ff: tuple[int, ...] = (96, 384, 512)
    joint_stages: int = 1
    temporal_patch: int = 2
    heads: int = 4
    temporal_kernel: int = 5
    dropout: float = 0.1
    drop_path: float = 0.1

    def __post_init__(self) -> None:
        for name in ("parents", "streams", "widths", "depths", "ff"):  # lists from YAML become tuples
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("num_joints", "in_channels", "num_classes", "num_frames", "num_persons", "heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"recognizer.{name} must be at least 1, got {getattr(self, name)}")
        if len(self.parents) != self.num_joints:
            raise ConfigError(f"recognizer.parents has {len(self.parents)} entries for num_joints={self.num_joints}")
        problem = check_parents(np.asarray(self.parents))
        if problem:
            raise ConfigError(f"recognizer.parents: {problem}")
        unknown = [s for s in self.streams if s not in STREAMS]
        if not self.streams or unknown or len(set(self.streams)) != len(self.streams):
            raise ConfigError(
                f"recognizer.streams must be distinct names from {list(STREAMS)}, got {list(self.streams)}"
            )
        if not len(self.widths) == len(self.depths) == len(self.ff):
            raise ConfigError(
                f"recognizer.widths, depths and ff need one entry per stage, got {len(self.widths)}, "
                f"{len(self.depths)} and {len(self.ff)}"
            )
        if min(self.widths + self.depths + self.ff, default=0) < 1:
            raise ConfigError("recognizer.widths, depths and ff must be positive")
        if not 1 <= self.joint_stages <= len(self.widths):
            raise ConfigError(f"recognizer.joint_stages must lie in [1, {len(self.widths)}], got {self.joint_stages}")
        joint_widths, frame_widths = self.widths[:self.joint_stages], self.widths[self.joint_stages:]
        if any(width % GRAPH_SUBSETS for width in joint_widths):
            raise ConfigError(
                f"recognizer.widths of joint stages {list(joint_widths)} must be divisible by {GRAPH_SUBSETS}"
            )
        if any(width % self.heads for width in frame_widths):
            raise ConfigError(
                f"recognizer.widths of frame stages {list(frame_widths)} must be divisible by heads={self.heads}"
            )
        if self.temporal_patch < 1 or self.num_frames % self.temporal_patch:
            raise ConfigError(
                f"recognizer.num_frames={self.num_frames} must be a multiple of temporal_patch={self.temporal_patch}"
            )
        if self.temporal_kernel < 1 or self.temporal_kernel % 2 == 0:
            raise ConfigError(f"recognizer.temporal_kernel must be odd and positive, got {self.temporal_kernel}")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.drop_path < 1.0):
            raise ConfigError("recognizer.dropout and recognizer.drop_path must lie in [0, 1)")

    @property
    def feature_frames(self) -> tuple[int, ...]:
        """``T_i`` of each stage's feature.

        ``num_frames / temporal_patch`` in the first stage, halved (rounding up) at each
        transition except the one from the last joint stage to the first frame stage.
        """
        frames = [self.num_frames // self.temporal_patch]
        for i in range(1, len(self.widths)):
            frames.append(frames[-1] if i == self.joint_stages else math.ceil(frames[-1] / 2))
        return tuple(frames)


PRESETS: dict[str, RecognizerConfig] = {
    "tiny": RecognizerConfig(
        num_frames=16, widths=(16, 32), depths=(1, 1), ff=(32, 64), heads=2, temporal_kernel=3,
        dropout=0.0, drop_path=0.0,
    ),
    "default": RecognizerConfig(),
    "paper": RecognizerConfig(
        num_frames=64, widths=(64, 512, 1024, 1024, 1024), depths=(1, 2, 2, 2, 2), ff=(128, 256, 256, 256, 256),
        temporal_patch=1, heads=8, temporal_kernel=3,
    ),
}
"""``tiny`` for tests; ``default``: fast on CPU; ``paper``: the published widths (one graph stage
added in front of the published 4 stages x 2 layers of d_model 512/1024, 8 heads, feed-forward 256,
64 frames)."""


def recognizer_preset(name: str, **overrides: object) -> RecognizerConfig:
    """A preset config with some fields replaced, e.g. ``recognizer_preset("default", num_classes=12)``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown recognizer preset {name!r}; presets: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(RecognizerConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"unknown recognizer option(s) {unknown}; known: {sorted(fields)}")
    return dataclasses.replace(PRESETS[name], **overrides)


@dataclass
class RecognizerOutput:
    """What :meth:`Recognizer.forward` returns.

    Attributes:
        logits: ``[B, K]``.
        features: per stage, frame tokens ``[B, T_i, D_i]`` (pooled over joints and persons).
        pooled: per stage, the features averaged over time ``[B, D_i]``.
    """

    logits: torch.Tensor
    features: list[torch.Tensor]
    pooled: list[torch.Tensor]


def skeleton_adjacency(parents: tuple[int, ...]) -> torch.Tensor:
    """Initial adjacency subsets ``[4, J, J]`` (row ``v`` = what joint ``v`` receives).

    Subsets: self (identity), parent (each joint takes its parent), children (mean of its
    children), whole body (mean of all joints).
    """
    num_joints = len(parents)
    adjacency = torch.zeros(GRAPH_SUBSETS, num_joints, num_joints)
    adjacency[0] = torch.eye(num_joints)
    for child, parent in enumerate(parents):
        if parent >= 0:
            adjacency[1, child, parent] = 1.0
            adjacency[2, parent, child] = 1.0
    adjacency[2] /= adjacency[2].sum(dim=1, keepdim=True).clamp_min(1.0)
    adjacency[3] = 1.0 / num_joints
    return adjacency


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a residual branch per sample with probability ``p``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)


class TemporalConv(nn.Module):
    """Depthwise convolution over time of channels-last tokens ``[N, T, J, C]`` or ``[N, T, C]``.

    ``[N, T, J, C]`` permuted to ``[N, C, T, J]`` is a channels-last view, which the CPU
    convolution reads without a copy. A ``stride`` of ``s`` keeps every ``s``-th frame of the
    stride-1 convolution, which is the strided convolution's output exactly: PyTorch's bf16
    backward of a strided depthwise convolution on the CPU is 25 times slower than the stride-1 one.
    """

    def __init__(self, channels: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(channels, channels, (kernel, 1), padding=(kernel // 2, 0), groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frame_tokens = x.dim() == 3
        if frame_tokens:
            x = x.unsqueeze(2)
        y = self.conv(x.permute(0, 3, 1, 2))[:, :, ::self.stride].permute(0, 2, 3, 1)
        return y.squeeze(2) if frame_tokens else y


class ConvFeedForward(nn.Module):
    """Depthwise temporal conv -> linear -> GELU -> linear, on ``[N, T, J, C]`` or ``[N, T, C]``.

    The convolution runs at the block width, before the expansion (as in ConvNeXt), which
    halves its cost against running it on the hidden width.
    """

    def __init__(self, width: int, hidden: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.temporal = TemporalConv(width, kernel)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(F.gelu(self.fc1(self.temporal(x)))))


class GraphMixer(nn.Module):
    """Mixing across the joints of ``[N, T, J, C]``.

    The channels of a linear "value" map are split into one group per adjacency subset
    (:func:`skeleton_adjacency`); group ``k`` of joint ``v`` becomes ``sum_u A_k[v, u] *
    value_k[u]``; a linear map then mixes the groups. The ``A_k`` are learned, starting from
    the skeleton.
    """

    def __init__(self, width: int, parents: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        self.value = nn.Linear(width, width)
        self.adjacency = nn.Parameter(skeleton_adjacency(parents))
        self.proj = nn.Linear(width, width)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, j, c = x.shape
        k = GRAPH_SUBSETS
        values = self.value(x).view(n * t, j, k, c // k).permute(2, 1, 0, 3).reshape(k, j, n * t * (c // k))
        mixed = torch.bmm(self.adjacency, values).view(k, j, n, t, c // k).permute(2, 3, 1, 0, 4).reshape(n, t, j, c)
        return self.dropout(self.proj(mixed))


class SelfAttention(nn.Module):
    """Multi-head self-attention over frame tokens ``[N, T, D]``."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.attention_dropout = dropout
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = attention(q, k, v, None, self.attention_dropout, self.training)
        return self.dropout(self.proj(y.transpose(1, 2).reshape(n, t, d)))


class Block(nn.Module):
    """Pre-norm residual block: a token mixer (graph or attention), then the conv feed-forward."""

    def __init__(self, mixer: nn.Module, width: int, hidden: int, kernel: int, dropout: float,
                 drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.mixer = mixer
        self.norm2 = nn.LayerNorm(width)
        self.feed_forward = ConvFeedForward(width, hidden, kernel, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.mixer(self.norm1(x)))
        return x + self.drop_path(self.feed_forward(self.norm2(x)))


class Downsample(nn.Sequential):
    """Halve time and change width: strided depthwise temporal conv, then a linear map."""

    def __init__(self, width_in: int, width_out: int, kernel: int) -> None:
        super().__init__(TemporalConv(width_in, kernel, stride=2), nn.Linear(width_in, width_out))


class Recognizer(nn.Module):
    """Skeleton action recognizer returning logits and per-stage features (see module docstring).

    Tokens are channels-last: ``[N, T, J, C]`` in joint stages, ``[N, T, D]`` in frame stages,
    ``N`` = clips x persons.
    """

    def __init__(self, config: RecognizerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("parents", torch.tensor(c.parents, dtype=torch.int64), persistent=False)
        stream_channels = len(c.streams) * c.in_channels
        self.input_norm = nn.BatchNorm1d(c.num_joints * stream_channels)
        self.embed = nn.Linear(c.temporal_patch * stream_channels, c.widths[0])
        self.joint_embedding = nn.Parameter(torch.zeros(c.num_joints, c.widths[0]))
        nn.init.trunc_normal_(self.joint_embedding, std=0.02)

        rates = torch.linspace(0.0, c.drop_path, sum(c.depths)).tolist()
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, (width, depth, hidden) in enumerate(zip(c.widths, c.depths, c.ff)):
            is_joint_stage = i < c.joint_stages
            if i == c.joint_stages:
                self.transitions.append(nn.Linear(c.num_joints * c.widths[i - 1], width))
            elif i > 0:
                self.transitions.append(Downsample(c.widths[i - 1], width, c.temporal_kernel))
            blocks = []
            for _ in range(depth):
                mixer = (GraphMixer(width, c.parents, c.dropout) if is_joint_stage
                         else SelfAttention(width, c.heads, c.dropout))
                blocks.append(Block(mixer, width, hidden, c.temporal_kernel, c.dropout, rates.pop(0)))
            self.stages.append(nn.Sequential(*blocks, nn.LayerNorm(width)))
        self.head_dropout = Dropout(c.dropout)
        self.classifier = nn.Linear(c.widths[-1], c.num_classes)

    @property
    def feature_dims(self) -> tuple[int, ...]:
        """``D_i`` of each stage's feature."""
        return self.config.widths

    @property
    def feature_frames(self) -> tuple[int, ...]:
        """``T_i`` of each stage's feature."""
        return self.config.feature_frames

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate and return ``[B, M, T, J, C]``."""
        c = self.config
        if x.dim() == 4:
            x = x.unsqueeze(1)
        if x.dim() != 5:
            raise ValueError(f"recognizer input must be [B, T, J, C] or [B, M, T, J, C], got shape {tuple(x.shape)}")
        expected = (c.num_frames, c.num_joints, c.in_channels)
        if tuple(x.shape[2:]) != expected or x.shape[1] not in (1, c.num_persons):
            raise ValueError(
                f"recognizer input of shape {tuple(x.shape)} does not match [B, M={c.num_persons}, "
                f"T={c.num_frames}, J={c.num_joints}, C={c.in_channels}] (M may also be 1)"
            )
        return x

    def forward(self, x: torch.Tensor) -> RecognizerOutput:
        """Classify clips.

        Args:
            x: ``[B, T, J, C]`` or ``[B, M, T, J, C]``; persons that are all zeros (absent) are
                left out of the average over persons.

        Returns:
            :class:`RecognizerOutput` with logits ``[B, K]`` and per-stage features.
        """
        x = self._check_input(x)
        b, m, t, j, _ = x.shape
        present = x.flatten(2).ne(0).any(dim=2).to(x.dtype)
        person_weights = present / present.sum(dim=1, keepdim=True).clamp_min(1.0)

        streams = input_streams(x.flatten(0, 1), self.parents, self.config.streams)
        patch = self.config.temporal_patch
        h = self.input_norm(streams.reshape(b * m * t, -1)).view(b * m, t // patch, patch, j, streams.shape[-1])
        h = self.embed(h.transpose(2, 3).flatten(3)) + self.joint_embedding

        features = []
        for i, stage in enumerate(self.stages):
            if i == self.config.joint_stages:
                h = h.flatten(2)
            if i > 0:
                h = self.transitions[i - 1](h)
            h = stage(h)
            frame_tokens = h.mean(dim=2) if i < self.config.joint_stages else h
            per_person = frame_tokens.view(b, m, *frame_tokens.shape[1:])
            features.append(torch.einsum("bm,bmtd->btd", person_weights, per_person))
        pooled = [feature.mean(dim=1) for feature in features]
        logits = self.classifier(self.head_dropout(pooled[-1]))
        return RecognizerOutput(logits=logits, features=features, pooled=pooled)

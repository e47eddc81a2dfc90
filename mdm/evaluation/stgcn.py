"""The evaluator recognizer: a small ST-GCN over the skeleton graph.

It judges generated motion (FID, accuracy, diversity, multimodality), so it is deliberately
independent of the I-MDM recognizer: a different architecture (graph convolutions with
fixed, normalised adjacency subsets and temporal convolutions, after Yan et al., "Spatial
Temporal Graph Convolutional Networks", 2018), trained separately on real training clips only.

Layout: input ``[B, T, J, C]`` (docs/architecture.md); inside the network ``[B, C, T, J]`` so that the
convolutions run over time and joints.

* Input streams: joint positions, and optionally bones (joint minus parent) and motion (next
  frame minus this one), concatenated on channels; normalised per joint and channel (data BN).
* Blocks: spatial graph convolution (a 1x1 convolution per adjacency subset, aggregated over
  neighbours with the normalised subset and a learned per-edge importance), then a temporal
  convolution (optionally strided), each with BatchNorm; a residual connection.
* Head: global average pooling over frames and joints, a linear *feature layer* whose output
  is the evaluator feature ``[B, D]`` used by the generation metrics, then ReLU, dropout and
  a linear classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdm.data.streams import STREAMS, input_streams
from mdm.errors import ConfigError
from mdm.skeleton import check_parents, load_skeleton


def _kinect_v1_parents() -> tuple[int, ...]:
    return load_skeleton("kinect_v1").parents


@dataclass(frozen=True)
class STGCNConfig:
    """Shape and size of an :class:`STGCN` (defaults: the ``cpu`` preset on Kinect v1).

    Attributes:
        num_joints: ``J``.
        in_channels: ``C`` of the input, 3 for positions.
        num_classes: ``K``.
        parents: parent joint of each joint (-1 for the root): the graph and the bone stream.
        streams: input streams from :data:`STREAMS`, in order.
        widths: output channels of each block.
        strides: temporal stride of each block (2 halves the frames).
        temporal_kernel: odd kernel size of the temporal convolutions.
        feature_dim: ``D`` of the feature layer (the features the metrics use).
        dropout: dropout after each temporal convolution and before the classifier.
    """

    num_joints: int = 20
    in_channels: int = 3
    num_classes: int = 10
    parents: tuple[int, ...] = field(default_factory=_kinect_v1_parents)
    streams: tuple[str, ...] = ("joint", "bone", "motion")
    widths: tuple[int, ...] = (32, 64, 64, 128)
    strides: tuple[int, ...] = (1, 2, 1, 2)
    temporal_kernel: int = 9
    feature_dim: int = 128
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.num_joints < 1 or self.in_channels < 1 or self.num_classes < 1 or self.feature_dim < 1:
            raise ConfigError("num_joints, in_channels, num_classes and feature_dim must be positive")
        if len(self.parents) != self.num_joints:
            raise ConfigError(f"parents has {len(self.parents)} entries for {self.num_joints} joints")
        problem = check_parents(np.asarray(self.parents))
        if problem:
            raise ConfigError(f"parents: {problem}")
        known = all(s in STREAMS for s in self.streams)
        if not self.streams or not known or len(set(self.streams)) != len(self.streams):
            raise ConfigError(f"streams must be distinct names from {STREAMS}, got {list(self.streams)}")
        if not self.widths or len(self.strides) != len(self.widths):
            raise ConfigError(f"widths ({len(self.widths)}) and strides ({len(self.strides)}) need one entry per block")
        if any(w < 1 for w in self.widths) or any(s not in (1, 2) for s in self.strides):
            raise ConfigError("widths must be positive and strides 1 or 2")
        if self.temporal_kernel < 1 or self.temporal_kernel % 2 == 0:
            raise ConfigError(f"temporal_kernel must be odd and positive, got {self.temporal_kernel}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")


PRESETS: dict[str, dict[str, object]] = {
    "tiny": {"widths": (16, 32), "strides": (1, 2), "temporal_kernel": 3, "feature_dim": 32},
    "cpu": {},
}
"""Named sizes: ``tiny`` for tests and smoke runs, ``cpu`` (the defaults) for real runs."""


def stgcn_preset(name: str, **overrides: object) -> STGCNConfig:
    """An :class:`STGCNConfig` of a named size with overrides (dataset shape, any field)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown evaluator preset {name!r}; presets: {', '.join(PRESETS)}")
    values = {**PRESETS[name], **overrides}
    for key in ("parents", "streams", "widths", "strides"):
        if key in values:
            values[key] = tuple(values[key])  # type: ignore[arg-type]
    try:
        return STGCNConfig(**values)  # type: ignore[arg-type]
    except TypeError as error:
        raise ConfigError(f"evaluator preset {name}: {error}") from None


def graph_subsets(parents: tuple[int, ...]) -> torch.Tensor:
    """ST-GCN's spatial-configuration partition of the skeleton graph, normalised: ``[3, J, J]``.

    Row ``w`` lists what joint ``w`` receives: subset 0 from itself, subset 1 from its parent
    (the neighbour nearer the root), subset 2 from its children. Every entry is divided by
    the degree of ``w`` counting its self loop, so the three subsets of a row sum to 1.
    """
    num_joints = len(parents)
    subsets = torch.zeros(3, num_joints, num_joints)
    subsets[0] = torch.eye(num_joints)
    for child, parent in enumerate(parents):
        if parent >= 0:
            subsets[1, child, parent] = 1.0
            subsets[2, parent, child] = 1.0
    degree = subsets.sum(dim=(0, 2))
    return subsets / degree[None, :, None]


class GraphTemporalBlock(nn.Module):
    """Spatial graph convolution then temporal convolution, with a residual: ``[B, C_in, T, J] ->
    [B, C_out, T / stride, J]``."""

    def __init__(self, channels_in: int, channels_out: int, subsets: torch.Tensor, kernel: int, stride: int,
                 dropout: float) -> None:
        super().__init__()
        self.register_buffer("subsets", subsets.clone())
        self.edge_importance = nn.Parameter(torch.ones_like(subsets))
        self.spatial = nn.Conv2d(channels_in, channels_out * len(subsets), kernel_size=1)
        self.temporal = nn.Sequential(
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, (kernel, 1), stride=(stride, 1), padding=(kernel // 2, 0)),
            nn.BatchNorm2d(channels_out),
            nn.Dropout(dropout),
        )
        if channels_in == channels_out and stride == 1:
            self.residual: nn.Module = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride=(stride, 1)),
                                          nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, j = x.shape
        k = len(self.subsets)
        per_subset = self.spatial(x).view(b, k, -1, t, j)
        aggregated = torch.einsum("bkctv,kwv->bctw", per_subset, self.subsets * self.edge_importance)
        return F.relu(self.temporal(aggregated) + self.residual(x))


@dataclass
class STGCNOutput:
    """What the evaluator returns for a batch.

    Attributes:
        logits: ``[B, K]``.
        features: ``[B, D]``, the feature layer's output (before its ReLU).
    """

    logits: torch.Tensor
    features: torch.Tensor


class STGCN(nn.Module):
    """ST-GCN action recognizer with a feature layer (see the module docstring)."""

    def __init__(self, config: STGCNConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("parents", torch.tensor(c.parents, dtype=torch.int64), persistent=False)
        channels = len(c.streams) * c.in_channels
        self.input_norm = nn.BatchNorm1d(c.num_joints * channels)
        subsets = graph_subsets(c.parents)
        blocks = []
        for width, stride in zip(c.widths, c.strides):
            blocks.append(GraphTemporalBlock(channels, width, subsets, c.temporal_kernel, stride, c.dropout))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.feature_layer = nn.Linear(channels, c.feature_dim)
        self.head_dropout = nn.Dropout(c.dropout)
        self.classifier = nn.Linear(c.feature_dim, c.num_classes)

    def forward(self, x: torch.Tensor) -> STGCNOutput:
        """Classify clips.

        Args:
            x: joint positions ``[B, T, J, C]``.

        Returns:
            :class:`STGCNOutput` with logits ``[B, K]`` and features ``[B, D]``.
        """
        c = self.config
        if x.dim() != 4 or tuple(x.shape[2:]) != (c.num_joints, c.in_channels):
            raise ValueError(f"evaluator input must be [B, T, J={c.num_joints}, C={c.in_channels}], "
                             f"got shape {tuple(x.shape)}")
        b, t, j, _ = x.shape
        h = input_streams(x, self.parents, c.streams)
        h = self.input_norm(h.reshape(b, t, -1).transpose(1, 2)).reshape(b, j, -1, t)
        h = self.blocks(h.permute(0, 2, 3, 1))
        features = self.feature_layer(h.mean(dim=(2, 3)))
        logits = self.classifier(self.head_dropout(F.relu(features)))
        return STGCNOutput(logits=logits, features=features)

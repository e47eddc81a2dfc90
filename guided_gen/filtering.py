"""Filters of generated clips: low recognizer confidence and near-copies of real training clips.

Near-copies are measured in normalised joint space: a clip goes through the recognizer's
evaluation pipeline (fixed length, centring, view normalisation), is encoded with the
generator's representation and normalised with the generator's statistics, so every coordinate
is in units of one training standard deviation; the distance of two clips is the root mean
square of their coordinate differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from mdm.data.dataset import MotionDataset
from mdm.data.loader import ClipDataset, collate_clips
from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import ConfigError
from mdm.representation import MotionRepresentation, NormStats
from mdm.data.dataset import single_person


@dataclass
class FilterConfig:
    """Thresholds of the two filters.

    Attributes:
        min_confidence: drop clips the recognizer gives less than this probability of their
            target class (0 keeps all).
        copy_threshold: drop clips whose nearest real training clip is closer than this RMS
            distance in normalised joint space (0 keeps all).
    """

    min_confidence: float = 0.5
    copy_threshold: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"--min-confidence must lie in [0, 1], got {self.min_confidence}")
        if self.copy_threshold < 0:
            raise ConfigError(f"--copy-threshold must be >= 0, got {self.copy_threshold}")


def apply_filters(confidence: np.ndarray, nearest_distance: np.ndarray,
                  config: FilterConfig) -> tuple[np.ndarray, dict[str, int]]:
    """Which clips to keep, and the counts of each reason to drop.

    Args:
        confidence: float ``[N]`` recognizer probability of each clip's target class.
        nearest_distance: float ``[N]`` distance to the nearest real training clip.
    Returns:
        bool ``[N]`` (True = keep) and ``{"generated", "low_confidence", "near_copy", "dropped", "kept"}``;
        a clip failing both filters counts under both reasons and once under ``dropped``.
    """
    low = confidence < config.min_confidence
    copy = nearest_distance < config.copy_threshold
    keep = ~(low | copy)
    counts = {"generated": int(len(keep)), "low_confidence": int(low.sum()), "near_copy": int(copy.sum()),
              "dropped": int((~keep).sum()), "kept": int(keep.sum())}
    return keep, counts


class NearCopyIndex:
    """The real training clips in normalised joint space, for nearest-neighbour distances.

    Args:
        reference: the real training clips (the first person of multi-person clips is used).
        pipeline: the recognizer's clip pipeline (its evaluation mode is applied).
        representation, stats: the generator's representation and normalisation statistics.
    """

    def __init__(self, reference: MotionDataset, pipeline: ClipPipelineConfig, representation: MotionRepresentation,
                 stats: NormStats, batch_size: int = 256) -> None:
        self.pipeline = pipeline
        self.representation = representation
        self.stats = stats
        self.batch_size = batch_size
        self.clip_ids = list(reference.clip_ids)
        self.points = self.embed(reference)

    @torch.no_grad()
    def embed(self, dataset: MotionDataset) -> torch.Tensor:
        """float32 ``[N, T * J * C]`` normalised features of every clip of ``dataset``."""
        loader = DataLoader(ClipDataset(single_person(dataset), self.pipeline, train=False),
                            batch_size=self.batch_size, collate_fn=collate_clips)
        return torch.cat([self.stats.normalize(self.representation.encode(batch["motion"])).flatten(1)
                          for batch in loader])

    @torch.no_grad()
    def nearest(self, dataset: MotionDataset) -> tuple[np.ndarray, np.ndarray]:
        """RMS distance ``[N]`` of each clip of ``dataset`` to its nearest reference clip, and
        that clip's index ``[N]``."""
        if len(dataset) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        query = self.embed(dataset)
        distances = torch.cdist(query.double(), self.points.double()) / np.sqrt(self.points.shape[1])
        best, index = distances.min(dim=1)
        return best.float().numpy(), index.numpy()

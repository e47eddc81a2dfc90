"""The generation protocol: FID (against real training and real test clips), evaluator accuracy,
diversity and multimodality, as mean and 95% interval over repeats, with the real-test floor.

Every figure comes from evaluator features (:class:`~mdm.evaluation.bundle.FeatureSet`). All
FIDs of one evaluation use sets of the same size ``n`` (FID depends on the number of clips):
by default the largest that every row allows, i.e. the smallest of: the clips of each sample
file, half the real test clips, and the real training clips. In each repeat ``r``:

* references: ``n`` real training clips drawn at random, and a random half-split of the real
  test clips whose first ``n`` clips are the test reference (the same references for every row);
* the floor row: ``n`` real test clips from the *other* half (so its test FID compares two
  disjoint sets of real test clips, and its training FID is the real-data figure the
  generator's training FID is held against);
* each sample row: ``n`` of its clips drawn at random without replacement;
* every metric of a row is computed on its ``n`` clips: FID against both references, evaluator
  accuracy, diversity (``diversity_pairs`` random pairs) and multimodality
  (``multimodality_pairs`` pairs per class).

A row's figure is the mean over repeats with the half-width of its 95% interval
(:func:`~mdm.evaluation.metrics.mean_and_interval`). Real training clips are every clip
outside the test split (the validation clips carved from training included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mdm.data.dataset import MotionDataset
from mdm.data.sources import DataConfig, load_training_data
from mdm.errors import ConfigError
from mdm.evaluation.bundle import FeatureSet
from mdm.evaluation.metrics import accuracy, diversity, fid, mean_and_interval, multimodality
from mdm.data.dataset import single_person

METRICS = ("fid_train", "fid_test", "accuracy", "diversity", "multimodality")
"""Metric names, in table order."""
FLOOR_ROW = "real test clips (floor)"


@dataclass
class ProtocolConfig:
    """Settings of :func:`run_protocol`.

    Attributes:
        repeats: repeated draws (R); the interval is over these.
        set_size: clips per set in each repeat (``n``); None = the largest every row allows.
        diversity_pairs: random pairs per diversity figure (200 in Action2Motion).
        multimodality_pairs: random same-class pairs per class (20 in Action2Motion).
        seed: seed of every draw.
    """

    repeats: int = 20
    set_size: int | None = None
    diversity_pairs: int = 200
    multimodality_pairs: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ConfigError(f"repeats must be at least 1, got {self.repeats}")
        if self.set_size is not None and self.set_size < 2:
            raise ConfigError(f"set size must be at least 2 clips, got {self.set_size}")
        if self.diversity_pairs < 1 or self.multimodality_pairs < 1:
            raise ConfigError("diversity_pairs and multimodality_pairs must be positive")


def protocol_set_size(train_clips: int, test_clips: int, sample_clips: dict[str, int], requested: int | None) -> int:
    """The ``n`` of every set (see the module docstring); ConfigError if it is below 2 or too large.

    Args:
        train_clips, test_clips: numbers of real training and test clips.
        sample_clips: number of clips of each sample set, by row name.
        requested: the user's set size, or None for the largest allowed.
    """
    limits = {"half the real test clips": test_clips // 2, "the real training clips": train_clips}
    limits.update({f"the clips of {name}": count for name, count in sample_clips.items()})
    limit_name, limit = min(limits.items(), key=lambda item: item[1])
    if requested is not None and requested > limit:
        raise ConfigError(f"set size {requested} exceeds {limit_name} ({limit})")
    size = requested if requested is not None else limit
    if size < 2:
        raise ConfigError(f"too few clips for the protocol: {limit_name} give sets of {size} (need 2)")
    return size


def _row_metrics(chosen: FeatureSet, train_ref: np.ndarray, test_ref: np.ndarray, config: ProtocolConfig,
                 rng: np.random.Generator) -> dict[str, float]:
    return {
        "fid_train": fid(chosen.features, train_ref),
        "fid_test": fid(chosen.features, test_ref),
        "accuracy": accuracy(chosen.scores, chosen.labels),
        "diversity": diversity(chosen.features, config.diversity_pairs, rng),
        "multimodality": multimodality(chosen.features, chosen.labels, config.multimodality_pairs, rng),
    }


def run_protocol(real_train: FeatureSet, real_test: FeatureSet, samples: dict[str, FeatureSet],
                 config: ProtocolConfig) -> dict[str, Any]:
    """Every metric of the floor row and of each sample set, over ``config.repeats`` repeats.

    Args:
        real_train: evaluator outputs of the real training clips.
        real_test: evaluator outputs of the real test clips.
        samples: evaluator outputs of each set of generated clips, by row name.

    Returns:
        JSON-ready ``{"protocol": {...}, "rows": [{"name", "clips", "metrics": {metric: {"mean",
        "interval95", "values"}}}]}``; the floor row comes first.
    """
    size = protocol_set_size(len(real_train), len(real_test), {k: len(v) for k, v in samples.items()}, config.set_size)
    rows: list[tuple[str, FeatureSet]] = [(FLOOR_ROW, real_test), *samples.items()]
    values: list[dict[str, list[float]]] = [{m: [] for m in METRICS} for _ in rows]
    for repeat in range(config.repeats):
        reference_rng = np.random.default_rng([config.seed, repeat])
        train_ref = real_train.features[reference_rng.choice(len(real_train), size, replace=False)]
        test_order = reference_rng.permutation(len(real_test))
        test_ref = real_test.features[test_order[:size]]
        for index, (_, features) in enumerate(rows):
            rng = np.random.default_rng([config.seed, repeat, index + 1])
            chosen_indices = test_order[size:2 * size] if index == 0 else rng.choice(len(features), size, replace=False)
            figures = _row_metrics(features.subset(chosen_indices), train_ref, test_ref, config, rng)
            for metric, value in figures.items():
                values[index][metric].append(value)
    return {
        "protocol": {"repeats": config.repeats, "set_size": size, "diversity_pairs": config.diversity_pairs,
                     "multimodality_pairs": config.multimodality_pairs, "seed": config.seed,
                     "real_train_clips": len(real_train), "real_test_clips": len(real_test),
                     "interval": "95%, 1.96 * std / sqrt(repeats)"},
        "rows": [{"name": name, "clips": len(features),
                  "metrics": {m: _summary(row_values[m]) for m in METRICS}}
                 for (name, features), row_values in zip(rows, values)],
    }


def _summary(values: list[float]) -> dict[str, Any]:
    """Mean and interval over the finite values (None, valid JSON, where there are none)."""
    finite = [v for v in values if math.isfinite(v)]
    mean, interval = mean_and_interval(finite) if finite else (None, None)
    return {"mean": mean, "interval95": interval, "values": [v if math.isfinite(v) else None for v in values]}


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`run_protocol` as a text table, ``mean ± interval`` per cell."""
    headers = ["row", "clips", "FID train", "FID test", "accuracy", "diversity", "multimodality"]
    lines = []
    for row in result["rows"]:
        cells = [row["name"], str(row["clips"])]
        for metric in METRICS:
            figure = row["metrics"][metric]
            scale, unit = (100.0, "%") if metric == "accuracy" else (1.0, "")
            cells.append("-" if figure["mean"] is None else
                         f"{scale * figure['mean']:.2f}{unit} ± {scale * figure['interval95']:.2f}{unit}")
        lines.append(cells)
    widths = [max(len(headers[i]), *(len(cells[i]) for cells in lines)) for i in range(len(headers))]
    protocol = result["protocol"]
    text = [f"{protocol['repeats']} repeats of {protocol['set_size']} clips per set; real references: "
            f"{protocol['real_train_clips']} training clips, {protocol['real_test_clips']} test clips; "
            f"± is the 95% interval of the mean",
            "  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    text += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)) for cells in lines]
    return "\n".join(text)


def real_reference_sets(data: DataConfig) -> tuple[MotionDataset, MotionDataset]:
    """The real training clips (every clip outside the test split) and the real test clips of
    the evaluator's data, first person only (as the generator and the evaluator see them)."""
    dataset = single_person(load_training_data(data))
    return dataset.subset(np.flatnonzero(dataset.split != "test")), dataset.split_subset("test")

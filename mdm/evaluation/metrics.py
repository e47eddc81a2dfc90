"""Metrics of generated motion from evaluator features (Action2Motion / ACTOR / MDM protocol).

* FID: Fréchet distance between Gaussians fitted to two sets of features.
* Accuracy: share of clips the evaluator assigns to the class they were generated for.
* Diversity: mean Euclidean distance between the features of random pairs of clips.
* Multimodality: mean distance between random pairs of clips of the same class.

Pairs are always of two different clips (ACTOR may draw a clip paired with itself).
Also the classification figures of a recognizer's test report (top-k, per class, confusion PNG),
shared by the evaluator and the co-trained recognizer.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased, float64) of features ``[N, D]``, N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need features [N >= 2, D] for a covariance, got shape {list(features.shape)}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet distance between N(mean1, cov1) and N(mean2, cov2).

    ``|m1 - m2|^2 + tr(C1) + tr(C2) - 2 tr((C1 C2)^(1/2))``, where ``tr((C1 C2)^(1/2))`` is
    computed as ``tr((C1^(1/2) C2 C1^(1/2))^(1/2))`` (same eigenvalues, but a symmetric
    positive semi-definite matrix, so two symmetric eigen-decompositions suffice: no complex
    parts, and singular covariances of few samples are fine). Clipped at 0 against rounding.
    """
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())
    diff = mean1 - mean2
    return max(float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt), 0.0)


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two sets of features ``[N1, D]`` and ``[N2, D]``."""
    return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of scores ``[N, K]`` against int labels ``[N]`` (NaN for no clips)."""
    return top_k_accuracy(scores, labels, 1)


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows of ``scores`` ``[N, K]`` whose label ``[N]`` is among the ``k`` highest (NaN for no clips)."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1)))


def _distinct_pairs(count: int, num_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``num_pairs`` pairs of different indices in ``[0, count)``, uniform over ordered pairs."""
    first = rng.integers(0, count, num_pairs)
    second = (first + rng.integers(1, count, num_pairs)) % count
    return first, second


def diversity(features: np.ndarray, num_pairs: int, rng: np.random.Generator) -> float:
    """Mean distance between the features ``[N, D]`` of ``num_pairs`` random pairs of different clips."""
    if len(features) < 2:
        raise ValueError(f"diversity needs at least 2 clips, got {len(features)}")
    first, second = _distinct_pairs(len(features), num_pairs, rng)
    return float(np.linalg.norm(features[first] - features[second], axis=1).mean())


def multimodality(features: np.ndarray, labels: np.ndarray, pairs_per_class: int, rng: np.random.Generator) -> float:
    """Mean distance of ``pairs_per_class`` random pairs of different clips within each class.

    Classes with fewer than two clips are left out; NaN if every class is.

    Args:
        features: ``[N, D]``.
        labels: int ``[N]``.
    """
    distances = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        first, second = _distinct_pairs(len(members), pairs_per_class, rng)
        distances.append(np.linalg.norm(features[members[first]] - features[members[second]], axis=1))
    return float(np.concatenate(distances).mean()) if distances else float("nan")


def mean_and_interval(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean over repeats and the half-width of its 95% interval, ``1.96 * std / sqrt(R)``.

    The MDM/ACTOR convention (``std`` over the R repeats, ddof 0), so figures compare with theirs.
    """
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(1.96 * values.std() / np.sqrt(len(values)))


def classification_summary(scores: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, object]:
    """Top-1, top-5, per-class accuracy and confusion matrix (row = true class), JSON-ready."""
    num_classes = len(class_names)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, scores.argmax(1)), 1)
    totals = matrix.sum(1)
    return {
        "num_clips": int(len(labels)),
        "top1": accuracy(scores, labels),
        "top5": top_k_accuracy(scores, labels, 5),
        "per_class_accuracy": {name: (float(matrix[k, k] / totals[k]) if totals[k] else None)
                               for k, name in enumerate(class_names)},
        "confusion_matrix": matrix.tolist(),
    }


def plot_confusion(matrix: np.ndarray, class_names: list[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG, with counts in the cells."""
    totals = matrix.sum(1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros(matrix.shape, float), where=totals > 0)
    size = max(4.0, 0.55 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(len(class_names)), class_names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if len(class_names) <= 30:
        for i in range(len(class_names)):
            for j in range(len(class_names)):
                if matrix[i, j]:
                    axis.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                              color="white" if normalised[i, j] > 0.5 else "black")
    axis.set_title(title)
    figure.colorbar(image, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)

"""Recognition metrics: top-k accuracy, confusion matrix, per-class accuracy, a confusion PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose true label is among the ``k`` highest scores.

    Args:
        scores: ``[N, K]`` logits or probabilities.
        labels: int ``[N]``.
    """
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 ``[K, K]``: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """float ``[K]`` recall of each class (NaN for a class without clips)."""
    totals = matrix.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def classification_report(scores: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, object]:
    """Top-1, top-5, per-class accuracy and the confusion matrix, JSON-ready."""
    matrix = confusion_matrix(scores.argmax(1), labels, len(class_names))
    per_class = per_class_accuracy(matrix)
    return {
        "num_clips": int(len(labels)),
        "top1": top_k_accuracy(scores, labels, 1),
        "top5": top_k_accuracy(scores, labels, 5),
        "per_class_accuracy": {name: (None if np.isnan(acc) else float(acc)) for name, acc in zip(class_names, per_class)},
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

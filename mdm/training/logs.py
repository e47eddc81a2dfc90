"""Training logs: a CSV of metrics per step or epoch, and PNG curves drawn from it."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class CSVLogger:
    """Appends rows of metrics to a CSV file; new keys extend the header (the file is rewritten).

    Resuming a run keeps the existing rows; rows at or after a resumed step are dropped first
    with :meth:`truncate_after` so the file never holds the same step twice.
    """

    def __init__(self, path: str | Path, tracker: Callable[..., None] | None = None) -> None:
        self.path = Path(path)
        self.tracker = tracker
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():
            with self.path.open(newline="") as file:
                self.rows = [dict(row) for row in csv.DictReader(file)]

    def truncate_after(self, step: int) -> None:
        """Drop rows whose ``step`` is greater than ``step`` (used when resuming)."""
        self.rows = [row for row in self.rows if int(float(row.get("step", 0))) <= step]
        self._write()

    def log(self, row: dict[str, Any]) -> None:
        """Append ``row`` (its ``step`` included) and rewrite the file; send its numbers to the tracker."""
        self.rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self._write()
        if self.tracker is not None:
            numbers = {k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float))}
            self.tracker(numbers, step=int(row["step"]))

    def _write(self) -> None:
        header: list[str] = []
        for row in self.rows:
            header += [key for key in row if key not in header]
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=header)
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.path)


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as file:
        return list(csv.DictReader(file))


def plot_curves(csv_path: str | Path, png_path: str | Path, panels: dict[str, list[str]], x_key: str = "step") -> Path:
    """Draw one panel per entry of ``panels`` (title -> column names) against ``x_key``.

    Missing or empty values are skipped, so train-loss rows and validation rows can share a file.
    """
    rows = read_csv(csv_path)
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for axis, (title, keys) in zip(axes[0], panels.items()):
        for key in keys:
            points = [(float(r[x_key]), float(r[key])) for r in rows if r.get(key) not in (None, "") and r.get(x_key)]
            points = [(x, y) for x, y in points if math.isfinite(y)]
            if points:
                xs, ys = zip(*points)
                axis.plot(xs, ys, label=key, marker="o" if len(points) < 30 else None, markersize=3)
        axis.set_title(title)
        axis.set_xlabel(x_key)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(png_path, dpi=110)
    plt.close(figure)
    return Path(png_path)

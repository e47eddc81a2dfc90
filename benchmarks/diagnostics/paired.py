"""Paired comparison of settings scored on the same folders (seeds, folds): mean ± sd and the paired difference."""

from __future__ import annotations

import numpy as np


def print_paired(top1: dict[str, np.ndarray], baseline: str) -> None:
    """Print each setting's mean ± sd of ``top1`` (percent, one value a folder, the same folders in the same
    order for every setting) and its paired difference from ``baseline``: mean ± sd and t (sd with one
    degree of freedom removed when there are several folders)."""
    print(f"mean over folders (test top-1; paired difference from {baseline}, t):")
    width = max(len(name) for name in top1)
    for name, values in top1.items():
        difference = values - top1[baseline]
        ddof = min(1, len(difference) - 1)
        spread = difference.std(ddof=ddof)
        t = difference.mean() / (spread / np.sqrt(len(difference))) if spread > 0 else float("nan")
        print(f"  {name:<{width}} {values.mean():.2f} ± {values.std(ddof=ddof):.2f}%  "
              f"{difference.mean():+.2f} ± {spread:.2f}  t = {t:.2f}")

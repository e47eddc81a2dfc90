"""DIAGNOSTIC: how far BVH export moves a dataset's bones (write each clip as BVH, read it back, compare).

    python benchmarks/diagnostics/bvh_round_trip.py --dataset nw-ucla --data-root datasets/NW-UCLA/all_sqe [--clips 25] [--json FILE]

For ``--clips`` clips spread over the dataset (the first person of each), the angle between every bone
of the clip and the same bone of the written file's forward kinematics, per frame; prints the largest
angle and the 99th percentile over all of them, and the worst clip's largest angle.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from mdm.cli import run_main
from mdm.data.readers.bvh import read_bvh
from mdm.data.sources import DATASET_NAMES, DataConfig, load_training_data
from mdm.export.bvh import write_bvh


def bone_angles_deg(clip: np.ndarray, written: np.ndarray, parents: tuple[int, ...]) -> np.ndarray:
    """Degrees between each bone of ``clip`` and of ``written`` (both ``[T, J, 3]``), bones of length > 0."""
    bones = [j for j, p in enumerate(parents) if p >= 0]
    a = clip[:, bones] - clip[:, [parents[j] for j in bones]]
    b = written[:, bones] - written[:, [parents[j] for j in bones]]
    cosine = np.sum(a * b, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(cosine, -1, 1)))[np.linalg.norm(a, axis=-1) > 1e-6]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASET_NAMES, default="procedural")
    parser.add_argument("--data-root")
    parser.add_argument("--clips", type=int, default=25)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    dataset = load_training_data(DataConfig(name=args.dataset, root=args.data_root))
    angles, worst = [], []
    with tempfile.TemporaryDirectory() as folder:
        for index in np.linspace(0, len(dataset) - 1, min(args.clips, len(dataset))).astype(int):
            clip = dataset.clips[index] if dataset.clips[index].ndim == 3 else dataset.clips[index][:, 0]
            path = write_bvh(Path(folder) / "clip.bvh", clip, dataset.skeleton, dataset.fps or 30.0)
            motion = read_bvh(path)
            written = motion.positions()[:, [motion.joint_names.index(n) for n in dataset.skeleton.joint_names]]
            clip_angles = bone_angles_deg(clip, written, dataset.skeleton.parents)
            angles.append(clip_angles)
            worst.append(float(clip_angles.max()))
    everything = np.concatenate(angles)
    figures = {"dataset": args.dataset, "clips": len(worst), "max_deg": float(everything.max()),
               "p99_deg": float(np.percentile(everything, 99)), "worst_clip_max_deg": max(worst)}
    print(f"{args.dataset}: {figures['clips']} clips, largest bone angle {figures['max_deg']:.3f} deg, "
          f"99th percentile {figures['p99_deg']:.3f} deg")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)

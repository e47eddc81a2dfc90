"""Builders of small files in the real dataset formats (made-up numbers), shared by the tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

NW_UCLA_LABELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7, 9: 8, 11: 9, 12: 10}
"""NW-UCLA action code -> the ``label`` value its JSON files hold."""


def real_nw_ucla_dir() -> Path:
    """Where the real NW-UCLA data lies: ``$NW_UCLA_DIR``, else ``datasets/NW-UCLA/all_sqe`` in the checkout
    (tests that need it skip when it is absent)."""
    if os.environ.get("NW_UCLA_DIR"):
        return Path(os.environ["NW_UCLA_DIR"])
    return Path(__file__).resolve().parents[1] / "datasets/NW-UCLA/all_sqe"


def real_kard_dir() -> Path:
    """Where the real KARD data lies: ``$KARD_DIR``, else ``datasets/KARD/realworld`` in the checkout."""
    if os.environ.get("KARD_DIR"):
        return Path(os.environ["KARD_DIR"])
    return Path(__file__).resolve().parents[1] / "datasets/KARD/realworld"


def write_kard_clip(folder: Path, activity: int, subject: int, repetition: int, frames: int,
                    seed: int = 0) -> np.ndarray:
    """Write ``aAA_sSS_eEE_realworld.txt`` (one ``x y z`` line per joint, millimetres) with random
    joints; return them in metres, float32 ``[T, 15, 3]``."""
    joints_mm = np.round(np.random.default_rng(seed).normal(0, 500, size=(frames, 15, 3)), 3)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [" ".join(f"{v:.3f}" for v in joint) for joint in joints_mm.reshape(-1, 3)]
    (folder / f"a{activity:02d}_s{subject:02d}_e{repetition:02d}_realworld.txt").write_text("\n".join(lines) + "\n")
    return (joints_mm / 1000).astype(np.float32)


def write_nw_ucla_clip(folder: Path, action: int, subject: int, episode: int, view: int, frames: int,
                       seed: int = 0) -> np.ndarray:
    """Write ``aAA_sSS_eEE_vVV.json`` with random joints; return them, float32 ``[T, 20, 3]``."""
    name = f"a{action:02d}_s{subject:02d}_e{episode:02d}_v{view:02d}"
    joints = np.random.default_rng(seed).normal(size=(frames, 20, 3)).astype(np.float32)
    record = {"file_name": name, "skeletons": joints.tolist(), "label": NW_UCLA_LABELS[action]}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(record))
    return joints


def write_humanact12_clip(folder: Path, name: str, frames: int, seed: int = 0) -> np.ndarray:
    """Write ``<name>.npy`` with random float32 joints ``[T, 24, 3]``; return them."""
    joints = np.random.default_rng(seed).normal(size=(frames, 24, 3)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{name}.npy", joints)
    return joints


def ntu_skeleton_text(frames: list[list[tuple[str, np.ndarray]]]) -> str:
    """The text of a ``.skeleton`` file: per frame a list of ``(bodyID, joints [25, 3])``."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines.append(f"{body_id} 0 1 2 1 2 0 0.1 -0.2 2")
            lines.append("25")
            lines += [f"{x:.6f} {y:.6f} {z:.6f} 250.1 200.2 900.3 500.4 0.1 0.2 0.3 0.9 2" for x, y, z in joints]
    return "\n".join(lines) + "\n"


def write_ntu_clip(folder: Path, name: str, frames: list[list[tuple[str, np.ndarray]]]) -> Path:
    """Write ``<name>.skeleton`` (see :func:`ntu_skeleton_text`); return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.skeleton"
    path.write_text(ntu_skeleton_text(frames))
    return path

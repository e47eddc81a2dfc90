"""Named datasets for the training scripts: read, split into train/val/test, report.

``--dataset`` names map to readers; ``procedural`` is the built-in procedural dataset. The
validation split is always carved from the training clips (never from test), seeded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mdm import ASSETS_DIR
from mdm.data.dataset import MotionDataset
from mdm.data.readers import DEFAULT_MIN_FRAMES, read_dataset
from mdm.data.splits import carve_validation_split, keep_training_share
from mdm.errors import ConfigError, UserError

logger = logging.getLogger("mdm.data")

REPO_DIR = ASSETS_DIR.parent
DATASET_NAMES = ("procedural", "nw-ucla", "kard", "bandai-namco", "humanact12", "humanact12poses", "ntu13",
                 "ntu-skeleton", "pyskl", "archive")
DEFAULT_ROOTS = {
    "nw-ucla": REPO_DIR / "datasets" / "NW-UCLA" / "all_sqe",
    "kard": REPO_DIR / "datasets" / "KARD" / "realworld",
    "bandai-namco": REPO_DIR / "datasets" / "Bandai-Namco-Research-Motiondataset-2" / "data",
    "humanact12": REPO_DIR / "datasets" / "HumanAct12" / "humanact12",
    "humanact12poses": REPO_DIR / "datasets" / "HumanAct12Poses" / "humanact12poses.pkl",
    "ntu13": REPO_DIR / "datasets" / "NTU13" / "ntu13.pkl",
    "ntu-skeleton": REPO_DIR / "datasets" / "NTU-RGBD" / "nturgb+d_skeletons",
}
"""Where each dataset is looked for when no ``data_root`` is given (see datasets/README.md)."""


@dataclass
class DataConfig:
    """Which data to train on and how to split it.

    Attributes:
        name: ``procedural`` (built in), ``nw-ucla``, ``kard``, ``bandai-namco``, ``humanact12``,
            ``humanact12poses``, ``ntu13``, ``ntu-skeleton``, ``pyskl`` (a pyskl annotation pickle,
            protocol ``xsub``), or ``archive`` (a motion archive, ``.npz``).
        root: file or folder to read (an ``.npz`` for ``archive``); None = the default place
            under ``datasets/`` (:data:`DEFAULT_ROOTS`).
        min_frames: clips shorter than this are dropped (and logged).
        val_fraction: share of the training clips carved out for validation.
        test_fraction: for data without a split of its own: share held out as test.
        split_seed: seed of the validation (and test) carving, and of ``train_fraction``'s choice.
        train_fraction: share of the training clips kept after validation is carved (whole
            performances, stratified by class); 1 = all. Below 1 it is a low-data setting:
            validation and test stay whole.
        texts: a class-text file (``assets/text/`` format) for language supervision; None = the
            texts shipped for the dataset, else sentences built from the class names.
    """

    name: str = "procedural"
    root: str | None = None
    min_frames: int = DEFAULT_MIN_FRAMES
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0
    train_fraction: float = 1.0
    texts: str | None = None

    def __post_init__(self) -> None:
        if self.name not in DATASET_NAMES:
            raise ConfigError(f"unknown dataset {self.name!r}; datasets: {', '.join(DATASET_NAMES)}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ConfigError(f"data.train_fraction must lie in (0, 1], got {self.train_fraction}")


def _read(config: DataConfig) -> MotionDataset:
    if config.name == "procedural":
        from mdm.data.procedural import load_default_dataset

        return load_default_dataset() if config.root is None else load_default_dataset(cache_dir=Path(config.root))
    if config.root is None and config.name in ("archive", "pyskl"):
        raise UserError(f"--dataset {config.name} needs --data-root FILE"
                        + (".npz" if config.name == "archive" else ".pkl"))
    root = Path(config.root) if config.root is not None else DEFAULT_ROOTS[config.name]
    if not root.exists():
        raise UserError(f"{root}: dataset {config.name!r} not found there; see datasets/README.md for how to "
                        "place it, or pass --data-root")
    return read_dataset(config.name, root, min_frames=config.min_frames)


def _hold_out_test(dataset: MotionDataset, fraction: float, seed: int) -> MotionDataset:
    """Give a dataset without a split a grouped, stratified train/test split."""
    as_train = replace(dataset, split=np.full(len(dataset), "train", dtype="<U5"))
    carved = carve_validation_split(as_train, fraction, seed)
    return replace(carved, split=np.where(carved.split == "val", "test", "train"))


def load_training_data(config: DataConfig) -> MotionDataset:
    """The dataset with a ``split`` of train/val/test, validation carved from training.

    A dataset that comes with validation clips keeps them; one without any split gets a
    grouped test split first (``test_fraction``), logged as such. With ``train_fraction`` below 1
    only that share of the training clips is kept (:func:`keep_training_share`).
    """
    dataset = _read(config)
    if len(dataset) == 0:
        raise UserError(f"dataset {config.name!r} has no clips")
    if dataset.split is None:
        logger.warning("dataset %s has no split of its own: holding out %.0f%% as test (seed %d)",
                       config.name, 100 * config.test_fraction, config.split_seed)
        dataset = _hold_out_test(dataset, config.test_fraction, config.split_seed)
    if not np.any(dataset.split == "val"):
        dataset = carve_validation_split(dataset, config.val_fraction, config.split_seed)
    if config.train_fraction < 1.0:
        before = int(np.sum(dataset.split == "train"))
        dataset = keep_training_share(dataset, config.train_fraction, config.split_seed)
        logger.info("low-data setting: kept %d of %d training clips (train_fraction %g, seed %d)",
                    int(np.sum(dataset.split == "train")), before, config.train_fraction, config.split_seed)
    return dataset

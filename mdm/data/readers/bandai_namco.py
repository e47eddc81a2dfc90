"""Reader of the Bandai Namco Research Motion dataset 2 (BVH motion capture, CC BY-NC 4.0).

Layout: a folder (the dataset's ``data/``) of ``dataset-2_{content}_{style}_{NNN}.bvh`` files, each with
a ``.json`` beside it holding ``{"content": c, "style": s}`` (10 contents, 7 styles). 30 frames per
second. Joint positions come from the BVH by forward kinematics (:mod:`mdm.data.readers.bvh`), in
metres (the files are in centimetres), on the 21 body joints of ``bandai_namco_21`` (the files'
fixed ``joint_Root`` at the origin is left out). The label is the content (10 classes), the style
(``label="style"``, 7 classes) or both (``label="content_style"``, 70 classes named ``"walk, active"``); the
clip id (the file stem, ``dataset-2_walk_active_001``) names both either way, and the style is kept
as the dataset's second label (``styles``, ``style_names``) whatever the class is.

Split: a seeded share of each content x style cell is held out for test (at least one clip of
every cell with two or more clips), the rest is training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from tqdm.auto import tqdm

from mdm.data.classes import load_class_table
from mdm.data.dataset import MotionDataset
from mdm.data.readers.bvh import read_bvh
from mdm.data.readers.common import list_clip_files
from mdm.errors import ConfigError, DataFormatError
from mdm.skeleton import SKELETONS_DIR, load_skeleton

SKELETON = "bandai_namco_21"
STYLES = ("active", "elderly", "exhausted", "feminine", "masculine", "normal", "youthful")
"""The styles in the order of the dataset's ``cfg/style_label.txt`` (the ``style`` value of the .json)."""
CM_PER_M = 100.0
TEST_SHARE = 0.2
LABELS = ("content", "style", "content_style")
"""What a clip's class is: its content, its style, or the pair."""


def bvh_joint_names() -> list[str]:
    """The BVH names of the skeleton's joints, in its order."""
    spec = yaml.safe_load((SKELETONS_DIR / f"{SKELETON}.yaml").read_text())
    return [joint["bvh"] for joint in spec["joints"]]


def _read_labels(file: Path) -> tuple[int, int]:
    """``(content, style)`` from the ``.json`` beside a ``.bvh``."""
    labels_file = file.with_suffix(".json")
    if not labels_file.is_file():
        raise DataFormatError(labels_file, "missing: every .bvh needs its .json with 'content' and 'style'")
    try:
        labels = json.loads(labels_file.read_text())
        content, style = int(labels["content"]), int(labels["style"])
    except (ValueError, KeyError, TypeError) as error:
        raise DataFormatError(labels_file, f"expected {{\"content\": int, \"style\": int}} ({error})") from None
    if not (0 <= content < 10 and 0 <= style < len(STYLES)):
        raise DataFormatError(labels_file, f"content {content} or style {style} out of range (0-9, 0-6)")
    return content, style


def held_out_cells(cells: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Bool ``[N]``: a seeded ``share`` of the clips of each cell (rounded, at least one where a cell
    has two or more clips, never a whole cell) marked for test."""
    if not 0.0 < share < 1.0:
        raise ConfigError(f"the held-out share must lie in (0, 1), got {share}")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(cells), dtype=bool)
    for cell in np.unique(cells):
        members = np.flatnonzero(cells == cell)
        if len(members) < 2:
            continue
        count = min(max(1, int(round(share * len(members)))), len(members) - 1)
        test[rng.choice(members, size=count, replace=False)] = True
    return test


def read_bandai_namco(path: Path, test_share: float = TEST_SHARE, split_seed: int = 0,
                      label: str = "content") -> MotionDataset:
    """Read the dataset's ``data/`` folder (or the dataset folder holding it).

    Args:
        label: the class of a clip, one of :data:`LABELS`; the split is the same for all three.

    Returns:
        10 contents, 7 styles or 70 (content, style) classes; clips float32 ``[T, 21, 3]`` in metres,
        skeleton ``bandai_namco_21``, clip ids = file stems (content and style in them), fps 30, split as
        the module says.

    Raises:
        ConfigError: an unknown ``label``.
        DataFormatError: a missing folder or .json, a malformed BVH (file and line named), a hierarchy
            without the expected joints.
    """
    if label not in LABELS:
        raise ConfigError(f"label must be one of {', '.join(LABELS)}, got {label!r}")
    path = Path(path)
    if (path / "data").is_dir():
        path = path / "data"
    wanted = bvh_joint_names()
    table = load_class_table("bandai_namco_2")
    clips, labels, styles, clip_ids = [], [], [], []
    for file in tqdm(list_clip_files(path, ".bvh"), desc="Bandai Namco BVH", unit="file", leave=False):
        content, style = _read_labels(file)
        motion = read_bvh(file)
        missing = [name for name in wanted if name not in motion.joint_names]
        if missing:
            raise DataFormatError(file, f"no joint(s) {missing} in the hierarchy; not a Bandai Namco file?")
        keep = [motion.joint_names.index(name) for name in wanted]
        clips.append((motion.positions()[:, keep] / CM_PER_M).astype(np.float32))
        labels.append(content)
        styles.append(style)
        clip_ids.append(file.stem)
    labels_array = np.array(labels, dtype=np.int64)
    styles_array = np.array(styles, dtype=np.int64)
    cells = labels_array * len(STYLES) + styles_array
    test = held_out_cells(cells, test_share, split_seed)
    contents = list(table.values())
    class_labels, class_names = {
        "content": (labels_array, contents),
        "style": (styles_array, list(STYLES)),
        "content_style": (cells, [f"{content}, {style}" for content in contents for style in STYLES]),
    }[label]
    return MotionDataset(
        clips=clips, labels=class_labels, class_names=class_names, skeleton=load_skeleton(SKELETON),
        clip_ids=clip_ids, split=np.where(test, "test", "train"), fps=30.0, styles=styles_array,
        style_names=list(STYLES),
        source=f"Bandai Namco Research Motion dataset 2: {path} (label {label}, test share {test_share}, "
               f"split seed {split_seed})",
    )

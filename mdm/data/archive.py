"""The project's motion archive (``.npz``): read with full validation, write atomically.

The format is specified in docs/data_format.md (see the README). Every rule is checked before
any dataset object exists, so a bad file is refused whole with one message naming the
file and the key.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from mdm.data.dataset import SPLIT_NAMES, MotionDataset
from mdm.errors import DataFormatError
from mdm.skeleton import Skeleton, available_skeletons, check_parents, load_skeleton

REQUIRED_KEYS = ("joints", "lengths", "labels", "class_names", "parents")
OPTIONAL_KEYS = ("joint_names", "subjects", "views", "clip_ids", "split", "fps", "source", "styles", "style_names")


def _require(path: Path, ok: bool, problem: str) -> None:
    if not ok:
        raise DataFormatError(path, problem)


def _check_int_vector(path: Path, data: dict[str, np.ndarray], key: str, n: int) -> None:
    value = data[key]
    _require(path, np.issubdtype(value.dtype, np.integer), f"key '{key}' must be integer, got {value.dtype}")
    _require(path, value.ndim == 1 and len(value) == n, f"key '{key}' must have shape [{n}], got {list(value.shape)}")


def _check_str_vector(path: Path, data: dict[str, np.ndarray], key: str, n: int) -> None:
    value = data[key]
    _require(path, value.dtype.kind == "U", f"key '{key}' must be unicode strings, got {value.dtype}")
    _require(path, value.ndim == 1 and len(value) == n, f"key '{key}' must have shape [{n}], got {list(value.shape)}")


def _validate(path: Path, data: dict[str, np.ndarray]) -> None:
    """Check every rule of the archive format; raise DataFormatError on the first broken one."""
    for key in REQUIRED_KEYS:
        _require(path, key in data, f"missing required key '{key}'")
    joints, lengths = data["joints"], data["lengths"]
    _require(path, joints.dtype.kind == "f", f"key 'joints' must be float, got {joints.dtype}")
    _require(path, joints.ndim in (3, 4) and joints.shape[-1] == 3,
             f"key 'joints' must have shape [F, J, 3] or [F, M, J, 3], got {list(joints.shape)}")
    _require(path, np.issubdtype(lengths.dtype, np.integer), f"key 'lengths' must be integer, got {lengths.dtype}")
    _require(path, lengths.ndim == 1, f"key 'lengths' must have shape [N], got {list(lengths.shape)}")
    n = len(lengths)
    _require(path, bool(np.all(lengths >= 1)), "key 'lengths' has a clip with fewer than 1 frame")
    _require(path, int(lengths.sum()) == joints.shape[0],
             f"key 'lengths' sums to {int(lengths.sum())} but 'joints' has {joints.shape[0]} frames")
    _require(path, bool(np.all(np.isfinite(joints))), "key 'joints' contains NaN or infinite coordinates")

    _check_str_vector(path, data, "class_names", len(data["class_names"]))
    class_names = data["class_names"]
    _require(path, len(class_names) >= 1, "key 'class_names' is empty")
    _require(path, len(set(class_names.tolist())) == len(class_names), "key 'class_names' has duplicate names")
    _check_int_vector(path, data, "labels", n)
    labels = data["labels"]
    _require(path, n == 0 or (labels.min() >= 0 and labels.max() < len(class_names)),
             f"key 'labels' has a label out of range [0, {len(class_names)})")

    parents = data["parents"]
    _require(path, np.issubdtype(parents.dtype, np.integer), f"key 'parents' must be integer, got {parents.dtype}")
    _require(path, parents.ndim == 1 and len(parents) == joints.shape[-2],
             f"key 'parents' must have shape [{joints.shape[-2]}] (one per joint), got {list(parents.shape)}")
    problem = check_parents(parents)
    _require(path, problem is None, f"key 'parents': {problem}")

    if "joint_names" in data:
        _check_str_vector(path, data, "joint_names", len(parents))
    for key in ("subjects", "views"):
        if key in data:
            _check_int_vector(path, data, key, n)
    if "clip_ids" in data:
        _check_str_vector(path, data, "clip_ids", n)
        _require(path, len(set(data["clip_ids"].tolist())) == n, "key 'clip_ids' has duplicate ids")
    if "split" in data:
        _check_str_vector(path, data, "split", n)
        unknown = sorted(set(data["split"].tolist()) - set(SPLIT_NAMES))
        _require(path, not unknown, f"key 'split' has unknown value(s) {unknown}; allowed: {list(SPLIT_NAMES)}")
    _require(path, ("styles" in data) == ("style_names" in data), "keys 'styles' and 'style_names' come together")
    if "styles" in data:
        _check_str_vector(path, data, "style_names", len(data["style_names"]))
        _require(path, len(set(data["style_names"].tolist())) == len(data["style_names"]),
                 "key 'style_names' has duplicate names")
        _check_int_vector(path, data, "styles", n)
        _require(path, n == 0 or (data["styles"].min() >= 0 and data["styles"].max() < len(data["style_names"])),
                 f"key 'styles' has a style out of range [0, {len(data['style_names'])})")
    if "fps" in data:
        fps = data["fps"]
        _require(path, fps.ndim == 0 and fps.dtype.kind in "fi" and float(fps) > 0,
                 "key 'fps' must be a positive number (scalar)")
    if "source" in data:
        _require(path, data["source"].ndim == 0 and data["source"].dtype.kind == "U",
                 "key 'source' must be a unicode scalar")


def _skeleton_for(parents: np.ndarray, joint_names: list[str] | None) -> Skeleton:
    """A built-in skeleton when the archive's tree and names match one, else one built from the archive."""
    for name in available_skeletons():
        builtin = load_skeleton(name)
        if tuple(parents.tolist()) == builtin.parents and (joint_names is None or tuple(joint_names) == builtin.joint_names):
            return builtin
    return Skeleton.from_parents(parents, joint_names, name="archive")


def read_archive(path: str | Path) -> MotionDataset:
    """Read a motion archive, refusing any file that breaks the format.

    Args:
        path: an ``.npz`` written by :func:`write_archive` or any tool following docs/data_format.md.

    Returns:
        The dataset; clips are float32 ``[T, J, 3]`` or ``[T, M, J, 3]`` views into one array.

    Raises:
        DataFormatError: the file is missing, unreadable, or breaks a rule of the format.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "no such file")
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DataFormatError(path, f"not a readable .npz archive ({error})") from None
    except ValueError as error:
        raise DataFormatError(path, f"not an .npz archive ({error})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataFormatError(path, "holds a single .npy array, not an .npz archive of named keys")
    data = {}
    with npz:
        for key in npz.files:
            try:
                data[key] = npz[key]
            except ValueError:
                problem = f"key '{key}' holds pickled objects, which archives never contain"
                raise DataFormatError(path, problem) from None
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise DataFormatError(path, f"key '{key}' is unreadable ({error})") from None
    _validate(path, data)

    joints = np.ascontiguousarray(data["joints"], dtype=np.float32)
    offsets = np.concatenate([[0], np.cumsum(data["lengths"])])
    clips = [joints[offsets[i]: offsets[i + 1]] for i in range(len(data["lengths"]))]
    joint_names = data["joint_names"].tolist() if "joint_names" in data else None
    return MotionDataset(
        clips=clips,
        labels=data["labels"].astype(np.int64),
        class_names=data["class_names"].tolist(),
        skeleton=_skeleton_for(data["parents"].astype(np.int64), joint_names),
        subjects=data["subjects"].astype(np.int64) if "subjects" in data else None,
        views=data["views"].astype(np.int64) if "views" in data else None,
        clip_ids=data["clip_ids"].tolist() if "clip_ids" in data else None,
        split=data["split"] if "split" in data else None,
        fps=float(data["fps"]) if "fps" in data else None,
        source=str(data["source"]) if "source" in data else str(path),
        styles=data["styles"].astype(np.int64) if "styles" in data else None,
        style_names=data["style_names"].tolist() if "style_names" in data else None,
    )


def write_archive(dataset: MotionDataset, path: str | Path) -> Path:
    """Write a dataset as a motion archive, atomically (temporary file, then rename).

    Rotations, if the dataset has them, are not part of the format and are not written;
    joint positions always are.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise DataFormatError(path, "an archive's name must end in .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    joints = (np.concatenate(dataset.clips, axis=0) if len(dataset) else
              np.zeros((0, dataset.skeleton.num_joints, 3))).astype(np.float32)
    arrays: dict[str, np.ndarray] = {
        "joints": joints,
        "lengths": dataset.lengths,
        "labels": dataset.labels.astype(np.int64),
        "class_names": np.array(dataset.class_names, dtype=str),
        "parents": np.array(dataset.skeleton.parents, dtype=np.int64),
        "joint_names": np.array(dataset.skeleton.joint_names, dtype=str),
        "subjects": dataset.subjects.astype(np.int64),
        "views": dataset.views.astype(np.int64),
        "clip_ids": np.array(dataset.clip_ids, dtype=str),
        "source": np.array(dataset.source, dtype=str),
    }
    if dataset.split is not None:
        arrays["split"] = np.asarray(dataset.split, dtype=str)
    if dataset.styles is not None:
        arrays["styles"] = dataset.styles.astype(np.int64)
        arrays["style_names"] = np.array(dataset.style_names, dtype=str)
    if dataset.fps is not None:
        arrays["fps"] = np.array(float(dataset.fps), dtype=np.float64)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path

"""Export clips of a motion archive (real or generated) for other programs: BVH (Blender, Unity, MotionBuilder)
or glTF binary (GLB: web viewers, Blender, three.js).

    python run/export_motion.py outputs/samples.npz --index 0 --out walk.bvh
    python run/export_motion.py datasets/kard.npz --index 3 --index 7 --format glb --out exported/

Joint positions become BVH rotations by inverse kinematics from the clip's own first frame as the rest
pose (:mod:`mdm.export.bvh`): forward kinematics of the file gives back every bone's direction, and
its bones have the clip's mean lengths. Units are the archive's (metres for the datasets read here).
A joint with several children gets a zero-length ``<joint>_to_<child>`` joint before each child. A GLB
holds the same skeleton as animated nodes, each with a small marker mesh (:mod:`mdm.export.gltf`).
With one ``--index`` and an ``--out`` ending in the format's suffix the clip is written there;
otherwise ``--out`` is a folder and each clip is written as ``<clip id>.<format>`` (two-person clips
as ``<clip id>_p1``, ``_p2``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mdm.cli import run_main
from mdm.data.archive import read_archive
from mdm.errors import ConfigError, UserError
from mdm.export.bvh import write_bvh
from mdm.export.gltf import write_glb

WRITERS = {"bvh": write_bvh, "glb": write_glb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", help="motion archive (.npz)")
    parser.add_argument("--index", type=int, action="append", required=True, help="a clip's index (repeatable)")
    parser.add_argument("--format", default="bvh", help=f"output format: {', '.join(WRITERS)} (default bvh)")
    parser.add_argument("--out", required=True, help="the file (one clip) or folder to write")
    parser.add_argument("--fps", type=float, help="frame rate when the archive records none (default 30)")
    args = parser.parse_args(argv)
    if args.format not in WRITERS:
        raise ConfigError(f"--format {args.format!r}: known formats are {', '.join(WRITERS)}")
    dataset = read_archive(args.archive)
    bad = [i for i in args.index if not 0 <= i < len(dataset)]
    if bad:
        raise UserError(f"--index {bad[0]}: {args.archive} holds clips 0 to {len(dataset) - 1}")
    out = Path(args.out)
    suffix = f".{args.format}"
    single_file = len(args.index) == 1 and out.suffix == suffix
    folder = out.parent if single_file else out
    if single_file and not folder.is_dir():
        raise UserError(f"--out {out}: no folder {folder}")
    if not single_file:
        if out.suffix:
            raise ConfigError(f"--out {out}: several clips go to a folder, not a {out.suffix} file")
        folder.mkdir(parents=True, exist_ok=True)
    fps = dataset.fps or args.fps or 30.0
    written = []
    for index in args.index:
        clip = dataset.clips[index]
        persons = [clip] if clip.ndim == 3 else [clip[:, m] for m in range(clip.shape[1]) if np.any(clip[:, m])]
        for number, person in enumerate(persons, start=1):
            name = dataset.clip_ids[index] + (f"_p{number}" if len(persons) > 1 else "")
            target = out if single_file and len(persons) == 1 else folder / f"{name}{suffix}"
            try:
                written.append(WRITERS[args.format](target, person, dataset.skeleton, fps))
            except OSError as error:
                raise UserError(f"--out {target}: cannot write there ({error.strerror})") from None
    for path in written:
        print(f"wrote {path}")
    return 0


def console() -> None:
    """The ``imdm-export`` command."""
    run_main(main)

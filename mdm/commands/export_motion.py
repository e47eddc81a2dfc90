"""Export clips of a motion archive (real or generated) for other programs: BVH (Blender, Unity, MotionBuilder),
glTF binary (GLB: web viewers, Blender, three.js), or AMASS-style npz for SMPL-parameterised data.

    python run/export_motion.py outputs/samples.npz --index 0 --out walk.bvh
    python run/export_motion.py datasets/kard.npz --index 3 --index 7 --format glb --out exported/
    python run/export_motion.py humanact12poses.pkl --input-format humanact12poses --index 0 --format npz --out clip.npz

Joint positions become BVH rotations by inverse kinematics from the clip's own first frame as the rest
pose (:mod:`mdm.export.bvh`): forward kinematics of the file gives back every bone's direction, and
its bones have the clip's mean lengths. Units are the archive's (metres for the datasets read here).
A joint with several children gets a zero-length ``<joint>_to_<child>`` joint before each child. A GLB
holds the same skeleton as animated nodes, each with a small marker mesh (:mod:`mdm.export.gltf`). The
npz format needs joint rotations, which SMPL-parameterised sources carry (``--input-format
humanact12poses`` or ``ntu13``; archives hold positions only): ``poses``, ``trans``,
``mocap_framerate`` (:mod:`mdm.export.amass`).
With one ``--index`` and an ``--out`` ending in the format's suffix the clip is written there;
otherwise ``--out`` is a folder and each clip is written as ``<clip id>.<format>`` (two-person clips
as ``<clip id>_p1``, ``_p2``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mdm.cli import run_main
from mdm.data.readers import READERS, read_dataset
from mdm.errors import ConfigError, UserError
from mdm.export.amass import write_amass_npz
from mdm.export.bvh import write_bvh
from mdm.export.gltf import write_glb

FORMATS = ("bvh", "glb", "npz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", help="motion archive (.npz), or a file of --input-format")
    parser.add_argument("--input-format", default="archive", choices=sorted(READERS),
                        help="format of the input (default archive)")
    parser.add_argument("--index", type=int, action="append", required=True, help="a clip's index (repeatable)")
    parser.add_argument("--format", default="bvh", help=f"output format: {', '.join(FORMATS)} (default bvh)")
    parser.add_argument("--out", required=True, help="the file (one clip) or folder to write")
    parser.add_argument("--fps", type=float, help="frame rate when the archive records none (default 30)")
    args = parser.parse_args(argv)
    if args.format not in FORMATS:
        raise ConfigError(f"--format {args.format!r}: known formats are {', '.join(FORMATS)}")
    dataset = read_dataset(args.input_format, args.archive, min_frames=1)
    if args.format == "npz" and dataset.rotations is None:
        raise UserError(f"{args.archive}: --format npz writes SMPL rotations, and this data holds joint positions "
                        "only; read SMPL-parameterised data (--input-format humanact12poses or ntu13), or write bvh")
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
                if args.format == "npz":
                    written.append(write_amass_npz(target, dataset.rotations[index], dataset.translations[index], fps))
                else:
                    writer = write_bvh if args.format == "bvh" else write_glb
                    written.append(writer(target, person, dataset.skeleton, fps))
            except OSError as error:
                raise UserError(f"--out {target}: cannot write there ({error.strerror})") from None
    for path in written:
        print(f"wrote {path}")
    return 0


def console() -> None:
    """The ``imdm-export`` command."""
    run_main(main)

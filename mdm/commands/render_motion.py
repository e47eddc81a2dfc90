"""Render clips of a motion dataset (real or generated) as a video of 3D stick figures or SMPL meshes.

    python run/render_motion.py FILE.npz --index I [--index J ...] --out OUT.mp4|OUT.gif \
        [--grid COLSxROWS] [--fps F] [--title TEXT]
    python run/render_motion.py --compare real.npz:0 generated.npz:3 --out compare.mp4
    python run/render_motion.py walk.bvh --format bvh --index 0 --out walk.png [--frame 20]

Each clip gets one panel with its class name and source as caption; several clips are tiled
(--grid, or a near-square layout). A ``.png`` output is one still frame (--frame, default the middle
one). The frame rate is the dataset's (30 when unknown) unless
--fps is given. SMPL meshes of SMPL-parameterised data (rotations, e.g. --format humanact12poses)
are drawn when --smpl-dir points at the user's SMPL model files:

    python run/render_motion.py humanact12poses.pkl --format humanact12poses --index 0 \
        --smpl-dir body_models --out mesh.mp4 [--mesh-out meshes/ --mesh-format ply]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import imageio.v3 as imageio
import numpy as np

from mdm.cli import run_main
from mdm.data.dataset import MotionDataset
from mdm.data.readers import READERS, read_dataset
from mdm.errors import ConfigError, UserError
from mdm.render import DEFAULT_FPS, View, check_video_path, render_video
from mdm.render.figure import resolve_grid
from mdm.render.stick import render_frames
from mdm.skeleton import Skeleton, load_skeleton

CAPTION_CHARS = 40


def parse_grid(text: str) -> tuple[int, int]:
    """``COLSxROWS`` (e.g. ``5x2``) -> ``(cols, rows)``."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise ConfigError(f"--grid expects COLSxROWS such as 5x2, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_clip_spec(text: str) -> tuple[str, int]:
    """``PATH:INDEX`` -> ``(PATH, INDEX)`` (the last colon separates them)."""
    path, sep, index = text.rpartition(":")
    if not sep or not path or not re.fullmatch(r"\d+", index):
        raise ConfigError(f"--compare expects FILE:INDEX such as real.npz:0, got {text!r}")
    return path, int(index)


def _caption(dataset: MotionDataset, index: int) -> str:
    """Class name, then source and clip id (long sources shortened from the left)."""
    source = dataset.source or "unknown source"
    if len(source) > CAPTION_CHARS:
        source = "..." + source[-(CAPTION_CHARS - 3):]
    return f"{dataset.class_names[int(dataset.labels[index])]}\n{source}: {dataset.clip_ids[index]}"


def _select(args: argparse.Namespace) -> list[tuple[MotionDataset, int]]:
    """The requested ``(dataset, clip index)`` pairs, each file read once, indices checked."""
    if args.compare and args.file:
        raise ConfigError("give either FILE with --index, or --compare FILE:INDEX ..., not both")
    if args.compare:
        specs = [parse_clip_spec(text) for text in args.compare]
    elif args.file:
        if not args.index:
            raise ConfigError(f"which clips of {args.file}? give --index I (repeatable)")
        specs = [(args.file, index) for index in args.index]
    else:
        raise ConfigError("nothing to render: give FILE with --index I, or --compare FILE:INDEX ...")
    datasets: dict[str, MotionDataset] = {}
    chosen = []
    for path, index in specs:
        if path not in datasets:
            datasets[path] = read_dataset(args.format, path, min_frames=1)
        dataset = datasets[path]
        if not 0 <= index < len(dataset):
            raise ConfigError(f"{path}: clip index {index} out of range; the file has {len(dataset)} clips "
                              f"(indices 0 to {len(dataset) - 1})")
        chosen.append((dataset, index))
    return chosen


def _render_meshes(args: argparse.Namespace, chosen: list[tuple[MotionDataset, int]],
                   common: dict[str, object]) -> Path:
    """SMPL meshes of the chosen clips, exported per frame if asked, rendered to the video."""
    for dataset, _ in chosen:
        if dataset.rotations is None or dataset.translations is None:
            raise ConfigError(
                f"--smpl-dir draws SMPL meshes from joint rotations, but {dataset.source} holds joint positions "
                "only (motion archives never hold rotations); read SMPL-parameterised data with --format "
                "humanact12poses or ntu13, or leave out --smpl-dir for stick figures"
            )
    from mdm.render.mesh import SmplBody, export_meshes, render_mesh_video  # torch and smplx: only for meshes

    body = SmplBody(args.smpl_dir, args.gender)
    meshes = [body.pose(dataset.rotations[index], dataset.translations[index]) for dataset, index in chosen]
    if args.mesh_out:
        for mesh, (dataset, index) in zip(meshes, chosen):
            folder = Path(args.mesh_out) / dataset.clip_ids[index]
            paths = export_meshes(mesh, folder, args.mesh_format)
            print(f"wrote {len(paths)} meshes to {folder}")
    return render_mesh_video(meshes, args.out, **common)


def _write_still(clips: list[np.ndarray], skeletons: list[Skeleton], out: Path, frame: int | None,
                 common: dict[str, object]) -> Path:
    """One frame (``frame``, else the middle of the longest clip) of the panels as a PNG."""
    frames = max(len(clip) for clip in clips)
    index = frames // 2 if frame is None else frame
    if not 0 <= index < frames:
        raise ConfigError(f"--frame {index}: the clips have frames 0 to {frames - 1}")
    options = {key: value for key, value in common.items() if key != "fps"}
    image = render_frames([clip[: index + 1] for clip in clips], skeletons, **options)[index]
    imageio.imwrite(out, image)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?",
                        help="the dataset file (a motion archive .npz unless --format says otherwise)")
    parser.add_argument("--index", type=int, action="append", default=[], help="clip index in FILE (repeatable)")
    parser.add_argument("--compare", nargs="+", metavar="FILE:INDEX",
                        help="clips from one or more files side by side, e.g. real.npz:0 generated.npz:3")
    parser.add_argument("--out", required=True, help="the video to write: .mp4 or .gif, or one frame as .png")
    parser.add_argument("--frame", type=int, help="with a .png output: the frame to draw (default the middle one)")
    parser.add_argument("--grid", help="panel layout COLSxROWS, e.g. 5x2 (default: near-square)")
    parser.add_argument("--fps", type=float, help="frame rate (default: the dataset's, else 30)")
    parser.add_argument("--title", help="a line above the video")
    parser.add_argument("--format", default="archive", choices=sorted(READERS),
                        help="format of the input files (default archive)")
    parser.add_argument("--skeleton", help="draw with this built-in skeleton instead of the file's (e.g. kinect_v1)")
    parser.add_argument("--panel-size", type=int, default=View.panel_size,
                        help="pixels per panel (default %(default)s)")
    parser.add_argument("--dpi", type=int, default=View.dpi, help="text and line scale (default %(default)s)")
    parser.add_argument("--elev", type=float, default=View.elev,
                        help="camera elevation in degrees (default %(default)s)")
    parser.add_argument("--azim", type=float, help="camera azimuth in degrees (default: in front of each figure)")
    parser.add_argument("--smpl-dir", help="folder of the SMPL model files: draw SMPL meshes (needs rotation data)")
    parser.add_argument("--gender", default="neutral", help="SMPL model: neutral, male or female (default neutral)")
    parser.add_argument("--mesh-out", help="with --smpl-dir: also write each frame's mesh under this folder")
    parser.add_argument("--mesh-format", default="ply", help="mesh file format: ply or obj (default ply)")
    args = parser.parse_args(argv)

    still = Path(args.out).suffix.lower() == ".png"
    if still:
        out = Path(args.out)
        if not out.parent.is_dir():
            raise UserError(f"--out {out}: no folder {out.parent}")
    else:
        out = check_video_path(args.out)
        if args.frame is not None:
            raise ConfigError("--frame chooses the frame of a .png output")
    grid = parse_grid(args.grid) if args.grid else None
    if args.mesh_out and not args.smpl_dir:
        raise ConfigError("--mesh-out needs --smpl-dir (meshes are built from the SMPL model)")
    if args.skeleton and args.smpl_dir:
        raise ConfigError("--skeleton applies to stick figures; SMPL meshes (--smpl-dir) use the SMPL body")
    view = View(panel_size=args.panel_size, dpi=args.dpi, elev=args.elev, azim=args.azim)
    chosen = _select(args)
    if grid is not None:
        resolve_grid(len(chosen), grid)
    fps = args.fps if args.fps is not None else chosen[0][0].fps or DEFAULT_FPS
    common = {"fps": fps, "titles": [_caption(d, i) for d, i in chosen], "title": args.title, "grid": grid,
              "view": view}
    if args.smpl_dir:
        if still:
            raise ConfigError("SMPL meshes (--smpl-dir) are rendered as video: write an .mp4 or .gif")
        path = _render_meshes(args, chosen, common)
    else:
        skeletons = [dataset.skeleton for dataset, _ in chosen]
        if args.skeleton:
            override = load_skeleton(args.skeleton)
            for skeleton in skeletons:
                if skeleton.num_joints != override.num_joints:
                    raise ConfigError(f"--skeleton {args.skeleton} has {override.num_joints} joints but the data has "
                                      f"{skeleton.num_joints}")
            skeletons = [override] * len(chosen)
        clips = [d.clips[i] for d, i in chosen]
        if still:
            path = _write_still(clips, skeletons, out, args.frame, common)
        else:
            path = render_video(clips, skeletons, out, **common)
    print(f"wrote {path} ({len(chosen)} clip(s), {fps:g} fps)")
    return 0


def console() -> None:
    """The ``imdm-render`` command."""
    run_main(main)

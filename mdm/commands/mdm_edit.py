"""Edit motion with a trained generator: in-betweening, prefix continuation, body-part editing, long sequences.

    python run/mdm_edit.py --checkpoint RUN --input clips.npz --index 3 --inbetween 10 --out inbetween.npz
    python run/mdm_edit.py --checkpoint RUN --input clips.npz --index 3 --prefix 20 --class "sit down" --out continued.npz
    python run/mdm_edit.py --checkpoint RUN --input clips.npz --index 3 --keep-joints hip_left,knee_left,ankle_left,foot_left,hip_right,knee_right,ankle_right,foot_right --out upper_body.npz
    python run/mdm_edit.py --checkpoint RUN --long "walk around,sit down,stand up" --overlap 10 --out long.npz

The input clip goes through the generator's training pipeline (its frame count, centring and view
normalisation), then the kept part (the first and last K frames, the first K, or the named joints with
the root's trajectory) is imposed on every sampling step and comes out unchanged; the rest is generated
for the clip's class or --class. --num edits of one clip differ by their noise (--seed). --long chains
windows of the generator's length, each continuing the last --overlap frames of the one before, one
class per window. Sampling: --steps, --method (ddim, ddpm, dpm++), --guidance-scale. The archive
written holds the edited clips (and, for edits, the prepared input as its last clip, labelled as the
input).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mdm.cli import run_main, setup_logging
from mdm.data.archive import read_archive, write_archive
from mdm.data.dataset import MotionDataset
from mdm.diffusion.sampling import SAMPLING_METHODS
from mdm.editing import edit, generate_long, inbetween_mask, joints_mask, prefix_mask, prepare_input
from mdm.errors import ConfigError, UserError
from mdm.generator import MotionGenerator, SamplingConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a generator folder or a run folder holding generator/")
    parser.add_argument("--input", help="motion archive (.npz) holding the clip to edit")
    parser.add_argument("--index", type=int, help="the clip's index in --input")
    parser.add_argument("--inbetween", type=int, metavar="K", help="keep the first and last K frames")
    parser.add_argument("--prefix", type=int, metavar="K", help="keep the first K frames, generate the rest")
    parser.add_argument("--keep-joints", help="keep these joints (comma-separated names), regenerate the others")
    parser.add_argument("--long", help="a long sequence: one class per window, comma-separated")
    parser.add_argument("--overlap", type=int, default=10, help="frames shared by two windows of --long (default 10)")
    parser.add_argument("--class", dest="class_name", help="class of the edit (default: the input clip's)")
    parser.add_argument("--num", type=int, default=1, help="edits of the clip to draw (default 1)")
    parser.add_argument("--steps", type=int, default=50, help="sampling steps (default 50)")
    parser.add_argument("--method", choices=SAMPLING_METHODS, default="ddim", help="sampler (default ddim)")
    parser.add_argument("--guidance-scale", type=float, default=1.0, help="classifier-free guidance (default 1: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="the archive to write (.npz)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.suffix != ".npz" or not out.parent.is_dir():
        raise ConfigError(f"--out {out}: an archive (.npz) in an existing folder")
    setup_logging()
    generator = MotionGenerator.load(args.checkpoint)
    sampling = SamplingConfig(steps=args.steps, method=args.method, guidance_scale=args.guidance_scale)
    rng = torch.Generator().manual_seed(args.seed)
    spec = generator.spec
    if args.long:
        if args.input or args.inbetween or args.prefix or args.keep_joints:
            raise ConfigError("--long makes a new sequence: leave out --input and the edit modes")
        labels = generator.class_indices([name.strip() for name in args.long.split(",")])
        sequence = generate_long(generator, labels, args.overlap, sampling, rng=rng)
        clips, clip_labels, ids = [sequence.cpu().numpy()], [labels[0]], ["long_" + "_".join(map(str, labels))]
        what = f"long sequence of classes {args.long} (overlap {args.overlap})"
    else:
        modes = [m for m in (args.inbetween, args.prefix, args.keep_joints) if m is not None]
        if len(modes) != 1 or args.input is None or args.index is None:
            raise ConfigError("give --input FILE --index I and one of --inbetween, --prefix, --keep-joints "
                              "(or --long for a new sequence)")
        source = read_archive(args.input)
        if not 0 <= args.index < len(source):
            raise UserError(f"--index {args.index}: {args.input} holds clips 0 to {len(source) - 1}")
        clip = source.clips[args.index]
        if clip.ndim == 4:
            raise UserError(f"--index {args.index}: the generator edits one person; this clip holds {clip.shape[1]}")
        label = generator.class_indices([args.class_name or source.class_names[source.labels[args.index]]])[0]
        frames, joints = spec.num_frames, len(spec.parents)
        if args.inbetween is not None:
            mask, what = inbetween_mask(frames, joints, args.inbetween), f"in-betweening (first and last {args.inbetween})"
        elif args.prefix is not None:
            mask, what = prefix_mask(frames, joints, args.prefix), f"continuation of the first {args.prefix} frames"
        else:
            names = [name.strip() for name in args.keep_joints.split(",")]
            mask, what = joints_mask(frames, generator.skeleton, names), f"body-part edit keeping {args.keep_joints}"
        prepared = torch.as_tensor(prepare_input(generator, clip))
        motion = prepared[None].expand(args.num, -1, -1, -1)
        edited = edit(generator, motion, mask, torch.full((args.num,), label), sampling, rng=rng)
        clips = [*edited.cpu().numpy(), prepared.numpy()]
        clip_labels = [label] * args.num + [int(source.labels[args.index])]
        ids = [f"edit_{k:03d}" for k in range(args.num)] + [f"input_{source.clip_ids[args.index]}"]
        what += f" of {args.input} clip {args.index}"
    dataset = MotionDataset(clips=[np.asarray(c, np.float32) for c in clips], labels=np.asarray(clip_labels),
                            class_names=spec.class_names, skeleton=generator.skeleton, clip_ids=ids, fps=spec.fps,
                            source=f"synthetic:mdm edit run={Path(args.checkpoint).resolve()} {what} "
                                   f"{args.method} steps={args.steps} seed={args.seed}")
    write_archive(dataset, out)
    print(f"wrote {out}: {what}, {len(clips)} clip(s)")
    return 0


def console() -> None:
    """The ``imdm-edit`` command."""
    run_main(main)

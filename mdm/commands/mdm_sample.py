"""Sample class-conditioned motions from a trained generator into a motion archive.

    python run/mdm_sample.py --checkpoint outputs/mdm_train/procedural-cpu-seed0 \
        --classes all --num-per-class 4 --steps 50 [--guidance-scale 2.5] [--seed 0] --out samples.npz \
        [--sheet samples.png]

A generator trained with ``condition_on_style=true`` also takes ``--styles all`` (or names): then every
class is drawn in every style, ``--num-per-class`` clips each, with classifier-free guidance on the
class (``--guidance-scale``) and on the style (``--style-guidance-scale``) apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mdm.cli import run_main, setup_logging
from mdm.data.archive import write_archive
from mdm.diffusion.sampling import SAMPLING_METHODS
from mdm.errors import ConfigError
from mdm.generator import MotionGenerator, SamplingConfig, samples_to_dataset
from mdm.render.trails import plot_motion_trails


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a run folder (or its generator/ folder)")
    parser.add_argument("--classes", default="all", help="'all' or comma-separated class names")
    parser.add_argument("--num-per-class", type=int, default=4)
    parser.add_argument("--steps", type=int, default=50, help="sampling steps (respaced; default 50)")
    parser.add_argument("--method", choices=SAMPLING_METHODS, default="ddim",
                        help="sampler: ddim, ddpm or dpm++ (DPM-Solver++, few steps; default ddim)")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM eta (0 = deterministic)")
    parser.add_argument("--guidance-scale", type=float, default=1.0, help="classifier-free guidance (1 = none)")
    parser.add_argument("--styles", help="'all' or comma-separated style names (a style-conditioned generator)")
    parser.add_argument("--style-guidance-scale", type=float, default=1.0,
                        help="classifier-free guidance on the style (1 = none)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", required=True, help="archive to write (.npz)")
    parser.add_argument("--sheet", help="also draw every sample as a motion trail on this PNG (a row per class)")
    args = parser.parse_args(argv)
    setup_logging()
    if Path(args.out).suffix != ".npz":
        raise ConfigError(f"--out {args.out}: an archive's name must end in .npz")
    if args.num_per_class < 1 or args.batch_size < 1:
        raise ConfigError("--num-per-class and --batch-size must be positive")
    generator = MotionGenerator.load(args.checkpoint, device=args.device)
    names = generator.spec.class_names if args.classes == "all" else [c.strip() for c in args.classes.split(",")]
    labels = torch.tensor(generator.class_indices(names))
    styles = None
    if args.styles is not None:
        style_names = generator.spec.style_names if args.styles == "all" else [s.strip() for s in args.styles.split(",")]
        style_ids = torch.tensor(generator.style_indices(style_names))
        labels, styles = labels.repeat_interleave(len(style_ids)), style_ids.repeat(len(labels))
        styles = styles.repeat_interleave(args.num_per_class)
    labels = labels.repeat_interleave(args.num_per_class)
    sampling = SamplingConfig(steps=args.steps, method=args.method, eta=args.eta, guidance_scale=args.guidance_scale,
                              style_guidance_scale=args.style_guidance_scale)
    if not 1 <= args.steps <= generator.spec.diffusion.num_train_timesteps:
        raise ConfigError(f"--steps must lie in [1, {generator.spec.diffusion.num_train_timesteps}]")
    rng = torch.Generator().manual_seed(args.seed)
    chunks = []
    for start in tqdm(range(0, len(labels), args.batch_size), desc="sampling", unit="batch"):
        batch = slice(start, start + args.batch_size)
        chunks.append(generator.generate(labels[batch], sampling, generator=rng,
                                         styles=None if styles is None else styles[batch]).cpu())
    positions = torch.cat(chunks).numpy()
    source = (f"synthetic:mdm run={Path(args.checkpoint).resolve()} method={args.method} steps={args.steps} "
              f"eta={args.eta} guidance_scale={args.guidance_scale} seed={args.seed}")
    if styles is not None:
        source += f" style_guidance_scale={args.style_guidance_scale}"
    dataset = samples_to_dataset(positions, labels.numpy().astype(np.int64), generator.spec, generator.skeleton, source,
                                 styles=None if styles is None else styles.numpy().astype(np.int64))
    write_archive(dataset, args.out)
    print(f"wrote {len(dataset)} clips to {args.out}")
    if args.sheet:
        rows, row_names = dataset.labels, dataset.class_names
        if dataset.styles is not None:
            row_names = [f"{name}, {style}" for name in dataset.class_names for style in dataset.style_names]
            rows = dataset.labels * len(dataset.style_names) + dataset.styles
        plot_motion_trails(dataset.clips, rows, row_names, dataset.skeleton, args.sheet,
                           title=f"{Path(args.checkpoint).name}: {args.method} {args.steps} steps, "
                                 f"guidance {args.guidance_scale}")
        print(f"wrote {args.sheet}")
    return 0


def console() -> None:
    """The ``imdm-sample`` command."""
    run_main(main)

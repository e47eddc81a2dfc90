"""Train the motion diffusion model (MDM) alone.

    python run/mdm_train.py                                   # built-in data, cpu preset
    python run/mdm_train.py --dataset nw-ucla --data-root datasets/NW-UCLA/all_sqe
    python run/mdm_train.py --resume outputs/mdm_train/procedural-cpu-seed0
    accelerate launch --multi_gpu --num_processes 4 run/mdm_train.py --preset paper ...

Writes the run folder: config.yaml, checkpoints/, log.csv, loss_curves.png, generator/.
"""

from __future__ import annotations

import argparse

from mdm import ASSETS_DIR
from mdm.cli import add_training_flags, default_run_dir, print_once, resolve_training_config, run_main, setup_logging
from mdm.training.mdm_trainer import MDMTrainConfig, train_mdm

PRESET_DIR = ASSETS_DIR / "configs" / "mdm_train"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_flags(parser, sorted(p.stem for p in PRESET_DIR.glob("*.yaml")), "cpu")
    args = parser.parse_args(argv)
    setup_logging()
    config = resolve_training_config(MDMTrainConfig, PRESET_DIR, args)
    output_dir = args.resume or args.output_dir or default_run_dir("mdm_train", config, args.preset)
    run = train_mdm(config, output_dir, resume=bool(args.resume), max_minutes=args.max_minutes)
    print_once(f"run folder: {run}\nsample with: python run/mdm_sample.py --checkpoint {run} --classes all "
               "--num-per-class 4 --out samples.npz")
    return 0


def console() -> None:
    """The ``imdm-train-mdm`` command."""
    run_main(main)

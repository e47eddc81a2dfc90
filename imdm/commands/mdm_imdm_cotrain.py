"""Co-train the I-MDM recognizer and the MDM motion diffusion model: the main job.

    python run/mdm_imdm_cotrain.py                       # built-in data, cpu preset (~10 min)
    python run/mdm_imdm_cotrain.py --dataset nw-ucla --data-root datasets/NW-UCLA/all_sqe --seed 1
    python run/mdm_imdm_cotrain.py --resume outputs/mdm_imdm_cotrain/procedural-cpu-seed0
    accelerate launch --multi_gpu --num_processes 4 run/mdm_imdm_cotrain.py --preset paper ...

The run folder gets the best recognizer (recognizer/), the best generator (generator/),
metrics.json with the one test evaluation, curves, a confusion matrix and a video of one
generated clip per class. Settings: see assets/configs/cotrain/<preset>.yaml and
imdm/training/cotrain.py (CoTrainConfig); override any with --config FILE.yaml or --set KEY=VALUE.
"""

from __future__ import annotations

import argparse

from imdm.training.cotrain import CoTrainConfig, cotrain
from mdm import ASSETS_DIR
from mdm.cli import add_training_flags, default_run_dir, print_once, resolve_training_config, run_main, setup_logging

PRESET_DIR = ASSETS_DIR / "configs" / "cotrain"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_flags(parser, sorted(p.stem for p in PRESET_DIR.glob("*.yaml")), "cpu", texts=True)
    args = parser.parse_args(argv)
    setup_logging()
    config = resolve_training_config(CoTrainConfig, PRESET_DIR, args)
    output_dir = args.resume or args.output_dir or default_run_dir("mdm_imdm_cotrain", config, args.preset)
    run = cotrain(config, output_dir, resume=bool(args.resume), max_minutes=args.max_minutes)
    print_once(f"run folder: {run}")
    return 0


def console() -> None:
    """The ``imdm-cotrain`` command."""
    run_main(main)

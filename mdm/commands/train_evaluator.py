"""Train the evaluator recognizer (a small ST-GCN) that judges generated motion.

    python run/train_evaluator.py                                  # built-in data, cpu preset
    python run/train_evaluator.py --dataset nw-ucla --data-root datasets/NW-UCLA/all_sqe \
        --output-dir outputs/evaluator/nw-ucla
    python run/train_evaluator.py --resume outputs/evaluator/nw-ucla

It learns from real training clips only (validation carved from them selects the model) and
reports its own test accuracy once, in metrics.json. The run folder's evaluator/ is what
evaluate_generation.py --evaluator takes. Settings: assets/configs/evaluator/<preset>.yaml and
mdm/evaluation/train.py (EvaluatorTrainConfig); override with --config FILE.yaml or --set KEY=VALUE.
"""

from __future__ import annotations

import argparse

from mdm import ASSETS_DIR
from mdm.cli import add_training_flags, default_run_dir, print_once, resolve_training_config, run_main, setup_logging
from mdm.evaluation.train import EvaluatorTrainConfig, train_evaluator

PRESET_DIR = ASSETS_DIR / "configs" / "evaluator"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_flags(parser, sorted(p.stem for p in PRESET_DIR.glob("*.yaml")), "cpu")
    args = parser.parse_args(argv)
    setup_logging()
    config = resolve_training_config(EvaluatorTrainConfig, PRESET_DIR, args)
    output_dir = args.resume or args.output_dir or default_run_dir("evaluator", config, args.preset)
    run = train_evaluator(config, output_dir, resume=bool(args.resume), max_minutes=args.max_minutes)
    print_once(f"run folder: {run}\nevaluate samples with: python run/evaluate_generation.py --evaluator {run} "
               "--samples samples.npz --repeats 20")
    return 0


def console() -> None:
    """The ``imdm-train-evaluator`` command."""
    run_main(main)

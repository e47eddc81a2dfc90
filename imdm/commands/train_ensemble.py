"""Train a stream ensemble: one recognizer per input stream, their class probabilities averaged.

    python run/train_ensemble.py                                    # built-in data, four streams
    python run/train_ensemble.py --dataset nw-ucla --data-root datasets/NW-UCLA/all_sqe --streams j,b,jm,bm --set mixed_precision=bf16
    python run/train_ensemble.py --resume outputs/train_ensemble/procedural-cpu-seed0

Streams: j (joint positions), b (bones), jm (joint motion), bm (bone motion). Each stream trains
in its own run folder inside the ensemble folder, as the main job does but with the recognizer
alone unless the stream is listed in --cotrain-streams. Running the same command again (or
--resume) continues an interrupted ensemble from its last finished stream and checkpoint.
--max-minutes is the whole ensemble's: each stream stops at an equal share of what is left when it
starts (and reports what it reached), so every stream gets its turn within the budget. Every
other setting is the main job's (--preset, --config, --set, as in run/mdm_imdm_cotrain.py).
The ensemble averages the streams' probabilities with equal weights, each stream's averaged over
the clip turned by -20, 0 and +20 degrees about the vertical axis (imdm.ensemble.TEST_TURNS).
Equal weights need no held-out clips, so the streams train on the validation clips too (the final
refit, ENSEMBLE_DEFAULTS); --set train_on_validation=false keeps them out, for validation figures.
"""

from __future__ import annotations

import argparse

from imdm.ensemble import read_ensemble_spec
from imdm.training.cotrain import CoTrainConfig
from imdm.training.ensemble import train_ensemble
from mdm import ASSETS_DIR
from mdm.cli import (
    add_training_flags,
    default_run_dir,
    print_once,
    resolve_training_config,
    run_main,
    setup_logging,
)

PRESET_DIR = ASSETS_DIR / "configs" / "cotrain"
ENSEMBLE_DEFAULTS: dict[str, object] = {"train_on_validation": True}
"""Where an ensemble's settings differ from the main job's: the members refit on training + validation clips
(decided on NW-UCLA's within-training-view folds, docs/results.md, "Recognition: four-stream ensembles")."""


def codes(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_flags(parser, sorted(p.stem for p in PRESET_DIR.glob("*.yaml")), "cpu", texts=True)
    parser.add_argument("--streams", type=codes, default=["j", "b", "jm", "bm"],
                        help="comma-separated streams to train and fuse (default j,b,jm,bm)")
    parser.add_argument("--cotrain-streams", type=codes, default=[],
                        help="streams whose recognizer co-trains with the generator (default: none)")
    args = parser.parse_args(argv)
    setup_logging()
    config = resolve_training_config(CoTrainConfig, PRESET_DIR, args, ENSEMBLE_DEFAULTS)
    streams = read_ensemble_spec(args.resume).streams if args.resume else args.streams
    output_dir = args.resume or args.output_dir or default_run_dir("train_ensemble", config, args.preset)
    metrics = train_ensemble(config, streams, output_dir, cotrain_streams=args.cotrain_streams,
                             max_minutes=args.max_minutes)
    print_once(f"ensemble folder: {output_dir}" + ("" if metrics else " (not finished: run again to continue)"))
    return 0


def console() -> None:
    """The ``imdm-ensemble`` command."""
    run_main(main)

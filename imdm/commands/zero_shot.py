"""Zero-shot recognition of unseen actions (TDSM and the text-prototype baseline) and text–motion retrieval.

    python run/zero_shot.py --dataset kard --unseen-count 4 --split-seed 0
    python run/zero_shot.py --dataset nw-ucla --data-root datasets/NW-UCLA/all_sqe --unseen-count 3 --split-seed 1
    python run/zero_shot.py --dataset nw-ucla --data-root datasets/NW-UCLA/all_sqe --unseen "walk around,sit down,throw"

The recognizer (alone, with the skeleton–text alignment head) trains on the seen classes' clips and
texts only; TDSM's denoiser then learns the seen features under their texts. The unseen classes'
texts are read only to score the test clips. The run folder gets zero_shot.json (zero-shot top-1,
generalized zero-shot seen / unseen / harmonic mean, motion->text and text->motion R@1/3/5 and
median ranks, for both scorers) and a summary table. Training settings: as run/mdm_imdm_cotrain.py's
(--preset, --config, --set), with the generator off.
"""

from __future__ import annotations

import argparse

from imdm.training.cotrain import CoTrainConfig
from imdm.training.zero_shot import zero_shot
from imdm.zero_shot import ClassSplit
from mdm import ASSETS_DIR
from mdm.cli import add_training_flags, default_run_dir, print_once, resolve_training_config, run_main, setup_logging
from mdm.errors import ConfigError

PRESET_DIR = ASSETS_DIR / "configs" / "cotrain"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_flags(parser, sorted(p.stem for p in PRESET_DIR.glob("*.yaml")), "cpu", texts=True)
    parser.add_argument("--unseen-count", type=int, help="hold out this many classes, drawn with --split-seed")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the drawn class split (default 0)")
    parser.add_argument("--unseen", help="hold out these classes, by name, comma-separated")
    args = parser.parse_args(argv)
    if (args.unseen_count is None) == (args.unseen is None):
        raise ConfigError("give either --unseen-count K (with --split-seed N) or --unseen a,b,c")
    if args.resume or args.max_minutes:
        raise ConfigError("zero-shot runs are short and start afresh: --resume and --max-minutes do not apply")
    setup_logging()
    config = resolve_training_config(CoTrainConfig, PRESET_DIR, args)
    if args.unseen is not None:
        names = [name.strip() for name in args.unseen.split(",") if name.strip()]
        split_of = lambda class_names: ClassSplit.named(class_names, names)  # noqa: E731
        tag = "named"
    else:
        split_of = lambda class_names: ClassSplit.random(class_names, args.unseen_count, args.split_seed)  # noqa: E731
        tag = f"u{args.unseen_count}-split{args.split_seed}"
    output_dir = args.output_dir or default_run_dir("zero_shot", config, f"{args.preset}-{tag}")
    zero_shot(config, split_of, output_dir)
    print_once(f"run folder: {output_dir}")
    return 0


def console() -> None:
    """The ``imdm-zero-shot`` command."""
    run_main(main)

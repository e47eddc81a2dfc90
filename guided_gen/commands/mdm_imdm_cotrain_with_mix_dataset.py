"""Retrain the recognizer on real plus synthetic clips; validate and test on real clips only.

    python run/mdm_imdm_cotrain_with_mix_dataset.py --run outputs/mdm_imdm_cotrain/nw-ucla-cpu-seed0 \\
        --synthetic outputs/synthetic/ucla.npz --seed 1
    python run/mdm_imdm_cotrain_with_mix_dataset.py --run RUN --synthetic syn.npz --ratio 0 --seed 1   # real only
    python run/mdm_imdm_cotrain_with_mix_dataset.py --run RUN --synthetic syn.npz --recipe paper
    python run/mdm_imdm_cotrain_with_mix_dataset.py --resume outputs/mdm_imdm_cotrain_with_mix_dataset/...

The real data and the training settings are the co-training run's (--preset P takes a preset's
settings instead, with the run's data). A recipe (assets/configs/mix/<recipe>.yaml) sets the mixing
(--ratio: synthetic clips per real training clip, 'all' for every one, 0 for the real-only
baseline; --synthetic-weight: loss weight of a synthetic clip; the budget) and may override
training settings; 'paper' is the published schedule. The generator is not trained unless
--with-generator. The run folder holds the same outputs as co-training (recognizer/, metrics.json
with the one test evaluation, confusion matrix, curves) plus mix.yaml.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import yaml

from guided_gen.mixed import MixConfig, load_recipe, train_mixed
from imdm.training.cotrain import CoTrainConfig
from mdm import ASSETS_DIR
from mdm.cli import dotted_override, parse_key_value, print_once, run_main, setup_logging
from mdm.config import from_dict, load_yaml, merge, to_dict
from mdm.errors import ConfigError

RECIPE_DIR = ASSETS_DIR / "configs" / "mix"
PRESET_DIR = ASSETS_DIR / "configs" / "cotrain"


def _ratio(text: str) -> float | str:
    """``--ratio``: a number, or ``all``."""
    if text == "all":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {text!r}") from None


def resolve(args: argparse.Namespace) -> tuple[CoTrainConfig, MixConfig]:
    """Training and mixing configs: run config (or preset) <- recipe <- --config <- flags."""
    run_config_file = Path(args.run) / "config.yaml"
    if not run_config_file.is_file():
        raise ConfigError(f"--run {args.run}: not a co-training run folder (no config.yaml)")
    run_config = from_dict(CoTrainConfig, load_yaml(run_config_file), str(run_config_file))
    config = run_config
    if args.preset:
        config = merge(CoTrainConfig(), load_yaml(PRESET_DIR / f"{args.preset}.yaml"), f"preset {args.preset}")
        config = merge(config, {"data": to_dict(run_config.data)}, str(run_config_file))
    recipe = load_recipe(RECIPE_DIR / f"{args.recipe}.yaml")
    config = merge(config, recipe.train, f"recipe {args.recipe}")
    if args.config:
        config = merge(config, load_yaml(args.config), args.config)
    flags: dict[str, object] = {"generator": {"enabled": args.with_generator}}
    if args.seed is not None:
        flags["seed"] = args.seed
    config = merge(config, flags, "flags")
    for text in args.set:
        config = merge(config, dotted_override(*parse_key_value(text, "--set")), "--set")
    mix = recipe.mix
    if args.synthetic_weight is not None:
        mix = replace(mix, synthetic_weight=args.synthetic_weight)
    if args.ratio is not None:
        mix = replace(mix, ratio=None if args.ratio == "all" else args.ratio)
    return config, mix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="the co-training run whose data and settings to use")
    parser.add_argument("--synthetic", help="synthetic archive (.npz) from mdm_guided_generation.py")
    parser.add_argument("--synthetic-weight", type=float, help="loss weight of a synthetic clip (recipe's by default)")
    parser.add_argument("--ratio", type=_ratio,
                        help="synthetic clips per real training clip, 'all', or 0 for real only (recipe's by default)")
    parser.add_argument("--recipe", choices=sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")), default="default",
                        help="mixing and schedule (default: default; paper: the published schedule)")
    parser.add_argument("--preset", choices=sorted(p.stem for p in PRESET_DIR.glob("*.yaml")),
                        help="co-training preset to take the training settings from (default: the run's own)")
    parser.add_argument("--config", help="YAML file overriding training settings (unknown keys are refused)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one training setting, dotted, e.g. recognizer.optim.lr=1e-4 (repeatable)")
    parser.add_argument("--with-generator", action="store_true", help="also train a generator on the mixed data")
    parser.add_argument("--output-dir", help="run folder (default: outputs/mdm_imdm_cotrain_with_mix_dataset/"
                        "<dataset>-<recipe>-ratio<r>-w<w>-seed<N>)")
    parser.add_argument("--seed", type=int, help="random seed of training and of the synthetic subsample")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint")
    parser.add_argument("--max-minutes", type=float, help="stop (saving a checkpoint) after this many minutes")
    args = parser.parse_args(argv)
    setup_logging()
    if args.resume:
        resume = Path(args.resume)
        for name in ("config.yaml", "mix.yaml"):
            if not (resume / name).is_file():
                raise ConfigError(f"--resume {resume}: not a mixed-training run folder (no {name})")
        config = from_dict(CoTrainConfig, load_yaml(resume / "config.yaml"), str(resume / "config.yaml"))
        record = yaml.safe_load((resume / "mix.yaml").read_text())
        mix = from_dict(MixConfig, record["mix"], str(resume / "mix.yaml"))
        run = train_mixed(config, mix, record["synthetic"], resume, run_dir=record["run"], resume=True,
                          max_minutes=args.max_minutes)
        print_once(f"run folder: {run}")
        return 0
    if not args.run or not args.synthetic:
        raise ConfigError("give --run DIR and --synthetic FILE.npz (or --resume DIR)")
    config, mix = resolve(args)
    ratio = "all" if mix.ratio is None else f"{mix.ratio:g}"
    output_dir = args.output_dir or (Path("outputs") / "mdm_imdm_cotrain_with_mix_dataset" /
                                     f"{config.data.name}-{args.recipe}-ratio{ratio}-w{mix.synthetic_weight:g}"
                                     f"-seed{config.seed}")
    run = train_mixed(config, mix, args.synthetic, output_dir, run_dir=args.run, max_minutes=args.max_minutes)
    print_once(f"run folder: {run}")
    return 0


def console() -> None:
    """The ``imdm-mix`` command."""
    run_main(main)

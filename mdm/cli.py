"""Shared pieces of the command-line scripts in ``run/``: clean failure on user errors, training flags."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from mdm.config import from_dict, load_yaml, merge, read_yaml
from mdm.errors import ConfigError, UserError

T = TypeVar("T")


def print_once(text: str) -> None:
    """Print ``text`` in the main process only (a script under ``accelerate launch`` runs in every process)."""
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(text)


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a script's ``main``; a user error ends with one line on stderr and exit code 2.

    Bugs (any other exception) still show their traceback.
    """
    try:
        code = main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except FileNotFoundError as error:
        print(f"error: {error.filename or error}: no such file or directory", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def parse_key_value(text: str, flag: str) -> tuple[str, object]:
    """A ``KEY=VALUE`` flag value -> ``(key, value)``, the value read as YAML (``2``, ``xview``, ``[1, 2]``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"{flag} expects KEY=VALUE, got {text!r}")
    try:
        return key, read_yaml(value)
    except yaml.YAMLError:
        raise ConfigError(f"{flag} {key}: cannot read the value {value!r}") from None


def add_training_flags(parser: argparse.ArgumentParser, presets: list[str], default_preset: str, *,
                       texts: bool = False) -> None:
    """Flags every training script shares (dataset, preset, config, output, seed, resume, budget) and,
    with ``texts``, the class-text file of the scripts that train the recognizer."""
    from mdm.data.sources import DATASET_NAMES

    parser.add_argument("--dataset", choices=DATASET_NAMES, help="dataset to train on (default: procedural, "
                        "the built-in procedural dataset)")
    parser.add_argument("--data-root", help="the dataset's folder or file (an .npz for --dataset archive); "
                        "default: its place under datasets/")
    parser.add_argument("--preset", choices=presets, default=default_preset,
                        help=f"size of models and training (default {default_preset})")
    parser.add_argument("--config", help="YAML file overriding the preset's settings (unknown keys are refused)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, dotted for nested ones, e.g. optim.lr=1e-4 (repeatable)")
    parser.add_argument("--output-dir", help="run folder (default: outputs/<script>/<dataset>-<preset>-seed<N>)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint")
    parser.add_argument("--max-minutes", type=float, help="stop (saving a checkpoint) after this many minutes")
    if texts:
        parser.add_argument("--texts", help="class texts (YAML, assets/text/ format) for language supervision "
                            "(default: the dataset's own, if it has any)")


def dotted_override(key: str, value: object) -> dict[str, object]:
    """``a.b.c=1`` -> ``{'a': {'b': {'c': 1}}}``."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value  # type: ignore[return-value]


def resolve_training_config(config_class: type[T], preset_dir: Path, args: argparse.Namespace,
                            command_defaults: dict[str, object] | None = None) -> T:
    """Config from defaults <- preset YAML <- ``command_defaults`` (the calling command's own) <- ``--config`` <-
    flags (``--dataset``, ``--seed``, ``--set``).

    With ``--resume DIR`` the run's own saved ``config.yaml`` is used instead, unchanged.
    """
    if args.resume:
        saved = Path(args.resume) / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"--resume {args.resume}: not a run folder (no config.yaml)")
        return from_dict(config_class, load_yaml(saved), str(saved))
    config = merge(config_class(), load_yaml(preset_dir / f"{args.preset}.yaml"), f"preset {args.preset}")
    if command_defaults:
        config = merge(config, command_defaults, "the command's defaults")
    if args.config:
        config = merge(config, load_yaml(args.config), args.config)
    overrides: dict[str, object] = {}
    if args.dataset or args.data_root:
        overrides["data"] = {"name": args.dataset or config.data.name, "root": args.data_root}  # type: ignore[attr-defined]
    if getattr(args, "texts", None):
        overrides.setdefault("data", {})["texts"] = args.texts
    if args.seed is not None:
        overrides["seed"] = args.seed
    config = merge(config, overrides, "flags")
    for text in args.set:
        config = merge(config, dotted_override(*parse_key_value(text, "--set")), "--set")
    return config


def default_run_dir(script: str, config: object, preset: str) -> Path:
    """``outputs/<script>/<dataset>-<preset>-seed<N>`` under the current folder."""
    return Path("outputs") / script / f"{config.data.name}-{preset}-seed{config.seed}"  # type: ignore[attr-defined]


def setup_logging() -> None:
    """INFO-level logs on stderr, one line each, for the scripts."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

"""Convert a dataset in any readable format into one motion archive (.npz), or a pyskl annotation pickle (.pkl).

    python run/convert_dataset.py --format nw-ucla --input datasets/NW-UCLA/all_sqe \
        --output datasets/nw_ucla.npz [--min-frames 2] [--option protocol=xview]
    python run/convert_dataset.py --format nw-ucla --input datasets/NW-UCLA/all_sqe \
        --output fold_v1v2.npz --view-fold 1:2     # train on view 1, test on view 2, view 3 left out

A view fold (TRAIN:TEST, comma-separated views on each side) keeps only those views' clips, for
choosing a recipe by cross-view transfer inside the training views without touching the test view.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mdm.cli import parse_key_value, run_main
from mdm.data.archive import write_archive
from mdm.data.readers import DEFAULT_MIN_FRAMES, READERS, read_dataset
from mdm.data.readers.pyskl import write_pyskl
from mdm.data.splits import view_fold
from mdm.errors import ConfigError


def parse_view_fold(text: str) -> tuple[list[int], list[int]]:
    """``"1,2:3"`` -> ``([1, 2], [3])``."""
    try:
        train, test = text.split(":")
        return [int(v) for v in train.split(",")], [int(v) for v in test.split(",")]
    except ValueError:
        raise ConfigError(f"--view-fold {text!r}: expected TRAIN:TEST views such as 1:2 or 1,2:3") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=sorted(READERS), help="format of the input")
    parser.add_argument("--input", required=True, help="the dataset's file or folder")
    parser.add_argument("--output", required=True, help="the archive to write (.npz), or a pyskl annotation pickle (.pkl)")
    parser.add_argument("--min-frames", type=int, default=DEFAULT_MIN_FRAMES,
                        help=f"drop clips shorter than this, with a warning (default {DEFAULT_MIN_FRAMES})")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the format's reader, e.g. protocol=xview for ntu-skeleton (repeatable)")
    parser.add_argument("--view-fold", metavar="TRAIN:TEST",
                        help="keep only these views: TRAIN views become train, TEST views test, e.g. 1:2")
    args = parser.parse_args(argv)
    if Path(args.output).suffix not in (".npz", ".pkl"):
        raise ConfigError(f"--output {args.output}: name a motion archive (.npz) or a pyskl annotation pickle (.pkl)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    options = dict(parse_key_value(text, "--option") for text in args.option)
    fold = parse_view_fold(args.view_fold) if args.view_fold else None
    dataset = read_dataset(args.format, args.input, min_frames=args.min_frames, **options)
    if fold is not None:
        dataset = view_fold(dataset, *fold)
    path = write_pyskl(dataset, args.output) if Path(args.output).suffix == ".pkl" else write_archive(dataset, args.output)
    print(dataset.summary())
    print(f"wrote {path}")
    return 0


def console() -> None:
    """The ``imdm-convert`` command."""
    run_main(main)

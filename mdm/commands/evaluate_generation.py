"""Judge generated motion with a trained evaluator: FID, accuracy, diversity, multimodality.

    python run/evaluate_generation.py --evaluator outputs/evaluator/nw-ucla \
        --samples ddpm1000.npz --samples ddim50.npz --repeats 20 --json generation.json

One table row per --samples archive, plus the real test clips as the floor. Each row gives
FID against real training clips and against real test clips, the evaluator's accuracy on the
clips' labels, diversity (200 random pairs) and multimodality (20 same-class pairs per class),
as mean ± 95% interval over the repeats; see mdm/evaluation/evaluate.py for the protocol. The
real clips are those the evaluator was trained on (its saved data config; --data-root points
elsewhere if the data moved). Sample archives must have the evaluator's skeleton and class names.

With --label style the samples are judged by their style (the second label a style-conditioned
generator writes) instead of their class, against an evaluator trained on style labels, for example
on a Bandai Namco archive converted with `--option label=style`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from mdm.cli import run_main, setup_logging
from mdm.data.archive import read_archive
from mdm.errors import ConfigError, UserError
from mdm.evaluation.bundle import TrainedEvaluator
from mdm.evaluation.evaluate import ProtocolConfig, format_table, protocol_set_size, real_reference_sets, run_protocol


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluator", required=True, help="a train_evaluator.py run folder (or its evaluator/ folder)")
    parser.add_argument("--samples", action="append", default=[], metavar="FILE.npz",
                        help="archive of generated clips, one table row each (repeatable)")
    parser.add_argument("--repeats", type=int, default=20, help="repeated draws for the 95%% intervals (default 20)")
    parser.add_argument("--set-size", type=int,
                        help="clips per set in each repeat (default: the largest every row allows)")
    parser.add_argument("--label", choices=("class", "style"), default="class",
                        help="judge the samples by their class (default) or by their style")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", help="where the evaluator's real data is now, if not where it was trained")
    parser.add_argument("--json", metavar="OUT.json", help="also write the full result (every repeat) as JSON")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    setup_logging()
    config = ProtocolConfig(repeats=args.repeats, set_size=args.set_size, seed=args.seed)
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be positive")
    if args.json and Path(args.json).suffix != ".json":
        raise ConfigError(f"--json {args.json}: the output's name must end in .json")
    if len(set(args.samples)) != len(args.samples):
        raise ConfigError("--samples names the same file twice")

    evaluator = TrainedEvaluator.load(args.evaluator, device=args.device)
    samples = {path: read_archive(path) for path in args.samples}
    if args.label == "style":
        unstyled = [path for path, dataset in samples.items() if dataset.styles is None]
        if unstyled:
            raise UserError(f"--label style: {', '.join(unstyled)} carry no styles")
        samples = {path: dataset.labelled_by_style() for path, dataset in samples.items()}
    for path, dataset in samples.items():
        evaluator.matching_labels(dataset, path)
    data = evaluator.spec.data if args.data_root is None else replace(evaluator.spec.data, root=args.data_root)
    real_train, real_test = real_reference_sets(data)
    evaluator.matching_labels(real_test, f"real data {data.name}")
    protocol_set_size(len(real_train), len(real_test), {k: len(v) for k, v in samples.items()}, config.set_size)

    features = {name: evaluator.feature_set(dataset, name, args.batch_size) for name, dataset in samples.items()}
    result = run_protocol(evaluator.feature_set(real_train, "real training clips", args.batch_size),
                          evaluator.feature_set(real_test, "real test clips", args.batch_size), features, config)
    result["evaluator"] = str(Path(args.evaluator).resolve())
    result["data"] = {"name": data.name, "root": data.root, "source": real_test.source}
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


def console() -> None:
    """The ``imdm-evaluate`` command."""
    run_main(main)

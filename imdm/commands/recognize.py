"""Classify the clips of a motion archive with a trained recognizer or a stream ensemble.

    python run/recognize.py --checkpoint outputs/mdm_imdm_cotrain/procedural-cpu-seed0 clips.npz [--json] [--top 3]
    python run/recognize.py --checkpoint outputs/train_ensemble/procedural-cpu-seed0 clips.npz [--no-turns]
    python run/recognize.py --checkpoint RUN_OR_ENSEMBLE clips.npz --split test --mixed-precision bf16

An ensemble classifies each clip as it is and turned by -20 and +20 degrees about the vertical
axis (imdm.ensemble.TEST_TURNS); --no-turns classifies each clip alone, about 1.3 times faster at
batch 1 and 3.3 times at batch 64, and 0.3-0.4 points less accurate on NW-UCLA (docs/results.md).
--mixed-precision bf16 runs the models in bfloat16, which pays on a CPU with AVX-512 BF16 or AMX and
on a GPU; --split classifies only the archive's clips of one split.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from imdm.ensemble import TrainedEnsemble, load_classifier
from mdm.cli import run_main
from mdm.data.archive import read_archive
from mdm.data.dataset import SPLIT_NAMES
from mdm.errors import ConfigError
from mdm.training.loop import MIXED_PRECISIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", help="motion archive (.npz) whose clips to classify")
    parser.add_argument("--checkpoint", required=True,
                        help="a co-training run folder (or its recognizer/ folder), or an ensemble folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--top", type=int, default=1, help="how many classes to list per clip")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-turns", action="store_true",
                        help="an ensemble classifies each clip alone, not also turned (faster, a little less accurate)")
    parser.add_argument("--split", choices=SPLIT_NAMES, help="classify only the clips of this split of the archive")
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISIONS, default="no",
                        help="run the models in this precision (bf16 pays on a CPU with AVX-512 BF16 or AMX)")
    args = parser.parse_args(argv)
    if args.top < 1:
        raise ConfigError("--top must be at least 1")
    classifier = load_classifier(args.checkpoint, device="cuda" if torch.cuda.is_available() else "cpu")
    if args.no_turns:
        if not isinstance(classifier, TrainedEnsemble):
            raise ConfigError("--no-turns applies to an ensemble folder; a single recognizer classifies each clip alone")
        classifier.spec.turns = [0.0]
    dataset = read_archive(args.archive)
    if args.split:
        if dataset.split is None:
            raise ConfigError(f"{args.archive}: the archive has no splits, so --split {args.split} cannot apply")
        dataset = dataset.split_subset(args.split)
    probabilities = classifier.predict(dataset, batch_size=args.batch_size, mixed_precision=args.mixed_precision)
    names = classifier.class_names
    rows = []
    for clip_id, label, probs in zip(dataset.clip_ids, dataset.labels, probabilities):
        order = np.argsort(-probs)[: args.top]
        rows.append({"clip_id": clip_id, "true": dataset.class_names[label] if label < len(dataset.class_names) else None,
                     "predictions": [{"class": names[k], "confidence": float(probs[k])} for k in order]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max([len(r["clip_id"]) for r in rows] + [4])
    print(f"{'clip':<{width}}  {'predicted':<24} confidence  true")
    for row in rows:
        best = row["predictions"][0]
        others = "  ".join(f"{p['class']} {p['confidence']:.2f}" for p in row["predictions"][1:])
        print(f"{row['clip_id']:<{width}}  {best['class']:<24} {best['confidence']:10.3f}  {row['true']}"
              + (f"   ({others})" if others else ""))
    correct = [r["predictions"][0]["class"] == r["true"] for r in rows]
    if rows and set(dataset.class_names) <= set(names):
        print(f"accuracy against the archive's labels: {np.mean(correct):.2%} of {len(rows)} clips")
    return 0


def console() -> None:
    """The ``imdm-recognize`` command."""
    run_main(main)

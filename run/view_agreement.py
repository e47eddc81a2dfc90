"""How well the recognizers' view normalisation agrees across cameras, per view reference.

    python run/view_agreement.py --dataset nw-ucla --data-root ../shared/data/NW-UCLA/all_sqe
    python run/view_agreement.py --dataset archive --data-root nw_ucla.npz --json view_agreement.json

For every two clips of one performance in the chosen split (training by default: the test view
stays out), both through the recognition pipeline's evaluation transform, the residual turn about
the vertical axis between them; one line per ``view_reference`` (``first_frame``, ``clip``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from mdm.cli import run_main
from mdm.data.sources import DATASET_NAMES, DataConfig, load_training_data
from mdm.data.transforms import VIEW_REFERENCES, recognition_pipeline
from mdm.data.view_agreement import view_agreement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    parser.add_argument("--data-root", help="the dataset's file or folder (an .npz for archive)")
    parser.add_argument("--split", default="train", choices=["train", "val", "test"],
                        help="whose clips to pair (default train: keep the test view out)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    dataset = load_training_data(DataConfig(name=args.dataset, root=args.data_root))
    results = {reference: view_agreement(dataset, dataclasses.replace(recognition_pipeline(), view_reference=reference),
                                         args.split).summary()
               for reference in VIEW_REFERENCES}
    print(f"{'view reference':15s} {'pairs':>5s} {'median':>7s} {'rms':>6s} {'<=10 deg':>8s} {'<=30 deg':>8s}")
    for reference, summary in results.items():
        print(f"{reference:15s} {summary['pairs']:5d} {summary['median_deg']:6.1f}° {summary['rms_deg']:5.1f}° "
              f"{summary['within_10_deg']:8.0%} {summary['within_30_deg']:8.0%}")
    print("median |yaw| per class: " + "; ".join(
        f"{name} " + "/".join(f"{results[r]['median_deg_per_class'][name]:.0f}" for r in VIEW_REFERENCES)
        for name in results[VIEW_REFERENCES[0]]["median_deg_per_class"]) + f" ({' / '.join(VIEW_REFERENCES)})")
    if args.json:
        args.json.write_text(json.dumps({"dataset": args.dataset, "data_root": args.data_root, "split": args.split,
                                         "references": results}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    run_main(main)

"""Export a trained recognizer or stream ensemble to ONNX, checked against PyTorch on real clips.

    python run/export_onnx.py --checkpoint outputs/mdm_imdm_cotrain/procedural-cpu-seed0 --clips datasets/procedural/procedural_v1_seed0.npz --out recognizer.onnx
    python run/export_onnx.py --checkpoint outputs/train_ensemble/procedural-cpu-seed0 --clips clips.npz --out ensemble.onnx

The graph takes prepared clips (the evaluation pipeline's output, free batch size) and gives class
probabilities; ``OUT.json`` beside it holds the input shape, the pipeline settings and the class
names. The clips of ``--clips`` (an archive) are prepared, run through both PyTorch and onnxruntime,
and the export is kept only if the probabilities agree within 1e-4 (the largest difference is
printed). Needs ``pip install onnx onnxscript onnxruntime``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from imdm.ensemble import load_classifier
from imdm.onnx_export import (
    PARITY_TOLERANCE,
    export_onnx,
    graph_of,
    onnx_probabilities,
    prepared_clips,
    require_onnx_packages,
    torch_probabilities,
)
from mdm.cli import run_main
from mdm.data.archive import read_archive
from mdm.errors import ConfigError, UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a run folder (or its recognizer/), or an ensemble folder")
    parser.add_argument("--clips", required=True, help="motion archive (.npz) whose clips check the export")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.suffix != ".onnx":
        raise ConfigError(f"--out {out}: the file name must end in .onnx")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: no folder {out.parent}")
    require_onnx_packages()
    classifier = load_classifier(args.checkpoint)
    dataset = read_archive(args.clips)
    for member in getattr(classifier, "members", [classifier]):
        member.check_dataset(dataset)
    clips = prepared_clips(dataset, graph_of(classifier)[1])
    export_onnx(classifier, out, clips)
    difference = float(np.abs(onnx_probabilities(out, clips) - torch_probabilities(classifier, clips)).max())
    if difference > PARITY_TOLERANCE:
        out.unlink()
        out.with_suffix(".json").unlink()
        raise UserError(f"the ONNX graph's probabilities differ from PyTorch's by {difference:.2e} on {len(clips)} clips "
                        f"(more than {PARITY_TOLERANCE:g}); nothing written")
    print(f"wrote {out} and {out.with_suffix('.json')}: largest difference from PyTorch {difference:.2e} "
          f"over {len(clips)} clips")
    return 0


def console() -> None:
    """The ``imdm-export-onnx`` command."""
    run_main(main)

"""Generate a synthetic dataset from a co-training run with guided sampling, filtered, as one archive.

    python run/mdm_guided_generation.py --run outputs/mdm_imdm_cotrain/nw-ucla-cpu-seed0 \\
        --per-class 100 --guidance feature,cfg=2.5,classifier=0.01 --seed 0 --out outputs/synthetic/ucla.npz
    python run/mdm_guided_generation.py --run RUN --balance 150 --out syn.npz     # top classes up to 150 clips
    accelerate launch --multi_gpu --num_processes 4 run/mdm_guided_generation.py --run RUN --per-class 200 --out syn.npz
    ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 -- run/mdm_guided_generation.py ...   # several CPU processes

--guidance takes any of feature, cfg, classifier, each optionally with =SCALE (defaults: feature 2,
twice the pull of the exemplar features over the featureless prediction, where feature=1 is the
paper's plain conditioning; cfg 2.5; classifier 0.01 standard deviations per step),
or none. Exemplars come from the run's training split only. Clips the recognizer gives less than
--min-confidence for their class, and near-copies of real training clips (closer than
--copy-threshold, RMS in normalised joint space), are dropped; the counts are logged and written to
FILE.json beside the archive. Work goes in shards under FILE.shards/: each process of an
`accelerate launch` makes its own, and running the same command again continues a stopped run.
"""

from __future__ import annotations

import argparse
import logging

from accelerate import Accelerator

from guided_gen.cotrained import CoTrainedRun
from guided_gen.filtering import FilterConfig
from guided_gen.guidance import EXEMPLAR_MODES, GuidanceConfig, parse_guidance
from guided_gen.synthesis import Synthesis, SynthesisConfig
from mdm.cli import run_main, setup_logging
from mdm.diffusion.sampling import SAMPLING_METHODS

logger = logging.getLogger("guided_gen")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="co-training run folder (with generator/ and recognizer/)")
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--per-class", type=int, help="clips to generate for every class")
    amount.add_argument("--balance", type=int, metavar="K",
                        help="top every class up to K clips counting its real training clips")
    parser.add_argument("--guidance", default="feature",
                        help="comma-separated feature[=S], cfg[=S], classifier[=S], or none (default: feature)")
    parser.add_argument("--steps", type=int, default=50, help="reverse diffusion steps (default 50)")
    parser.add_argument("--method", choices=SAMPLING_METHODS, default="ddim", help="sampler (default ddim)")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM noise scale (default 0)")
    parser.add_argument("--exemplars", type=int, default=2, help="training clips per sample for feature guidance")
    parser.add_argument("--exemplar-mode", choices=EXEMPLAR_MODES, default="interpolate",
                        help="combine exemplar features with equal (mean) or random convex weights (default)")
    parser.add_argument("--min-confidence", type=float, default=FilterConfig.min_confidence,
                        help="drop clips the recognizer gives less than this for their class (default %(default)s)")
    parser.add_argument("--copy-threshold", type=float, default=FilterConfig.copy_threshold,
                        help="drop clips closer than this to a real training clip (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64, help="clips per sampling batch and shard (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="archive to write (.npz)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    setup_logging()
    guidance = GuidanceConfig(**parse_guidance(args.guidance), exemplars=args.exemplars,
                              exemplar_mode=args.exemplar_mode, steps=args.steps, method=args.method, eta=args.eta)
    filters = FilterConfig(min_confidence=args.min_confidence, copy_threshold=args.copy_threshold)
    config = SynthesisConfig(guidance=guidance, filters=filters, per_class=args.per_class, balance=args.balance,
                             seed=args.seed, batch_size=args.batch_size)
    accelerator = Accelerator()
    run = CoTrainedRun.load(args.run, device=accelerator.device)
    synthesis = Synthesis(run, config, args.out)
    synthesis.check_plan()
    if accelerator.is_main_process:
        synthesis.write_plan()
        logger.info("%d clips to generate in %d shards (%s)", len(synthesis.labels), len(synthesis.shards),
                    guidance.describe())
    accelerator.wait_for_everyone()
    made = synthesis.generate(accelerator.process_index, accelerator.num_processes, progress=not args.no_progress)
    logger.info("process %d made %d shard(s)", accelerator.process_index, len(made))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        summary = synthesis.merge()
        counts = summary["counts"]
        print(f"archive: {args.out} ({counts['kept']} of {counts['generated']} clips kept; "
              f"{counts['low_confidence']} low confidence, {counts['near_copy']} near-copies); "
              f"summary: {synthesis.summary_path}")
    return 0


def console() -> None:
    """The ``imdm-generate`` command."""
    run_main(main)

"""DIAGNOSTIC: where a co-training step's time goes, on real clips.

    python benchmarks/diagnostics/train_step_profile.py --dataset nw-ucla --data-root datasets/NW-UCLA/all_sqe \
        --config assets/configs/recipes/nw_ucla_cross_view.yaml --set generator.enabled=false --set mixed_precision=bf16

Builds the co-trainer a run would build (same settings, a throwaway run folder), then times, over
``--steps`` batches after ``--warmup`` ones: the data pipeline (drawing a batch from the training
loader: reading, augmentation, collation) and the optimisation step (forward, backward, optimiser,
EMA). A ``torch.profiler`` pass over a few steps lists the operators that take the most CPU time.
Prints a table; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from imdm.training.cotrain import CoTrainConfig, CoTrainer
from mdm import ASSETS_DIR
from mdm.cli import add_training_flags, resolve_training_config, run_main

PRESET_DIR = ASSETS_DIR / "configs" / "cotrain"


def _median_ms(seconds: list[float]) -> float:
    return round(1000 * float(np.median(seconds)), 2)


def endless(loader: Iterable[dict[str, torch.Tensor]]) -> Iterator[dict[str, torch.Tensor]]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def profile_steps(trainer: CoTrainer, steps: int, warmup: int, profiled: int) -> dict[str, object]:
    """Median milliseconds of drawing a batch and of a training step, and the top operators by CPU time."""
    batches = endless(trainer.train_loader)
    data_s, step_s = [], []
    for index in range(warmup + steps):
        started = time.perf_counter()
        batch = next(batches)
        drawn = time.perf_counter()
        trainer.train_step(batch)
        done = time.perf_counter()
        if index >= warmup:
            data_s.append(drawn - started)
            step_s.append(done - drawn)
    fixed = [next(batches) for _ in range(profiled)]
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for batch in fixed:
            trainer.train_step(batch)
    top = [{"op": event.key, "cpu_ms_per_step": round(event.cpu_time_total / 1000 / profiled, 2),
            "calls_per_step": event.count // profiled}
           for event in sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:12]]
    return {"batch_size": trainer.config.batch_size, "threads": torch.get_num_threads(),
            "data_ms_per_batch": _median_ms(data_s), "step_ms": _median_ms(step_s),
            "data_share": round(float(np.median(data_s)) / float(np.median(data_s) + np.median(step_s)), 3),
            "top_ops_by_self_cpu": top}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_flags(parser, sorted(p.stem for p in PRESET_DIR.glob("*.yaml")), "cpu", texts=True)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profiled", type=int, default=5, help="steps under torch.profiler")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    config = resolve_training_config(CoTrainConfig, PRESET_DIR, args)
    with tempfile.TemporaryDirectory() as folder:
        trainer = CoTrainer(config, Path(folder) / "run", progress=False)
        figures = profile_steps(trainer, args.steps, args.warmup, args.profiled)
    print(f"batch {figures['batch_size']}, {figures['threads']} threads: data {figures['data_ms_per_batch']} ms "
          f"a batch, step {figures['step_ms']} ms ({figures['data_share']:.1%} of the time in the data pipeline)")
    print(f"{'operator':<40} {'ms/step':>9} {'calls':>6}")
    for row in figures["top_ops_by_self_cpu"]:
        print(f"{row['op'][:40]:<40} {row['cpu_ms_per_step']:>9.2f} {row['calls_per_step']:>6}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    run_main(main)

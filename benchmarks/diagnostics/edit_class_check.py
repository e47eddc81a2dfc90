"""DIAGNOSTIC: do edited clips keep their class? The evaluator's accuracy on edits of real test clips against
unedited samples of the same generator.

    python benchmarks/diagnostics/edit_class_check.py --generator RUN --evaluator EVAL [--per-class 10] \
        [--steps 50] [--method ddim] [--seed 0] [--json FILE]

For ``--per-class`` real test clips of each class (the evaluator's data, drawn with ``--seed``), each edit
mode regenerates part of the clip for the clip's own class: in-betweening (the first and last 10 frames
kept), continuation (the first 20 kept), body-part editing (the legs kept: joints named hip, knee, ankle or
foot). The evaluator's top-1 on each set is printed beside its top-1 on the prepared inputs themselves and on
unedited samples (as many per class, same sampler and seed). Class kept "at least as often as unedited
samples" means: each edit row at or above the samples row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mdm.cli import run_main
from mdm.data.dataset import MotionDataset
from mdm.editing import edit, inbetween_mask, joints_mask, prefix_mask, prepare_input
from mdm.evaluation.bundle import TrainedEvaluator
from mdm.evaluation.evaluate import real_reference_sets
from mdm.generator import MotionGenerator, SamplingConfig

LEG_WORDS = ("hip", "knee", "ankle", "foot")


def draw_test_clips(test: MotionDataset, class_names: list[str], per_class: int, seed: int) -> list[int]:
    """Indices of up to ``per_class`` test clips of each of ``class_names``, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    chosen = []
    for name in class_names:
        of_class = np.flatnonzero(test.labels == test.class_names.index(name))
        chosen += sorted(rng.choice(of_class, size=min(per_class, len(of_class)), replace=False).tolist())
    return chosen


def top1(evaluator: TrainedEvaluator, clips: torch.Tensor, labels: np.ndarray, generator: MotionGenerator) -> float:
    """The evaluator's top-1 on ``clips`` ``[N, T, J, 3]`` (generator space) of generator classes ``labels``."""
    dataset = MotionDataset(clips=list(clips.cpu().numpy()), labels=labels, class_names=generator.spec.class_names,
                            skeleton=generator.skeleton, fps=generator.spec.fps)
    scored = evaluator.feature_set(dataset, "clips")
    return float(np.mean(scored.scores.argmax(1) == scored.labels))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", required=True, help="a generator folder or a run folder holding generator/")
    parser.add_argument("--evaluator", required=True, help="a train_evaluator.py run folder")
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--method", default="ddim")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    generator = MotionGenerator.load(args.generator)
    evaluator = TrainedEvaluator.load(args.evaluator)
    spec, skeleton = generator.spec, generator.skeleton
    _, test = real_reference_sets(evaluator.spec.data)
    indices = draw_test_clips(test, spec.class_names, args.per_class, args.seed)
    inputs = torch.as_tensor(np.stack([prepare_input(generator, test.clips[i]) for i in indices]))
    labels = np.array(generator.class_indices([test.class_names[test.labels[i]] for i in indices]))
    sampling = SamplingConfig(steps=args.steps, method=args.method)
    legs = [name for name in skeleton.joint_names if any(word in name.lower() for word in LEG_WORDS)]
    masks = {"in-betweening, first and last 10 frames kept": inbetween_mask(spec.num_frames, skeleton.num_joints, 10),
             "continuation, first 20 frames kept": prefix_mask(spec.num_frames, skeleton.num_joints, 20),
             f"body part, legs kept ({len(legs)} joints)": joints_mask(spec.num_frames, skeleton, legs)}
    rows = {"prepared real inputs": top1(evaluator, inputs, labels, generator)}
    label_tensor = torch.as_tensor(labels)
    samples = generator.generate(label_tensor, sampling, generator=torch.Generator().manual_seed(args.seed))
    rows["unedited samples"] = top1(evaluator, samples, labels, generator)
    for name, mask in masks.items():
        edited = edit(generator, inputs, mask, label_tensor, sampling, rng=torch.Generator().manual_seed(args.seed))
        rows[name] = top1(evaluator, edited, labels, generator)
    print(f"{len(indices)} test clips, {args.method} {args.steps} steps, seed {args.seed}")
    for name, value in rows.items():
        print(f"{name:48s} {100 * value:6.2f}%")
    if args.json:
        args.json.write_text(json.dumps({"clips": len(indices), "steps": args.steps, "method": args.method,
                                         "seed": args.seed, "top1": rows}, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)

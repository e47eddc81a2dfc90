"""DIAGNOSTIC, NOT A TOOL: feature-guided synthesis with exemplars from the TEST split.

The I-MDM paper's published code takes the exemplars of feature guidance from the test set. This
script reproduces that protocol on one of our co-training runs, only to measure how much of a
real + synthetic gain it explains (docs/results.md, "Synthetic data"). Its archives must
never be used to choose or report anything else: they carry the test clips' labels into training.

It is ``run/mdm_guided_generation.py --guidance feature --per-class N`` with one change: the
exemplar bank holds the run's test clips, with their true labels or (``--pseudo-labels``) with
the labels the run's recognizer predicts for them (unlabelled test clips). The filters are the
defaults; the near-copy filter still compares with the training clips.

    python benchmarks/diagnostics/published_exemplars.py --run RUN --per-class 60 --out leak.npz [--pseudo-labels]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

import numpy as np

from guided_gen.cotrained import CoTrainedRun
from guided_gen.guidance import ExemplarBank, GuidanceConfig
from guided_gen.synthesis import Synthesis, SynthesisConfig
from mdm.cli import run_main, setup_logging
from mdm.data.dataset import MotionDataset
from mdm.data.sources import load_training_data

logger = logging.getLogger("diagnostics")


@dataclasses.dataclass
class PublishedProtocolRun(CoTrainedRun):
    """A co-training run whose feature-guidance exemplars are its test clips, as the published code does.

    Attributes:
        test_clips: the exemplars: the run's test clips, their split relabelled ``train``.
    """

    test_clips: MotionDataset

    def exemplar_bank(self, train_set: MotionDataset, batch_size: int = 64) -> ExemplarBank:
        """Features of the test clips (``train_set`` is ignored)."""
        return ExemplarBank.from_dataset(self.recognizer, self.test_clips, self.feature_stages, batch_size)


def with_test_exemplars(run: CoTrainedRun, pseudo_labels: bool) -> PublishedProtocolRun:
    """``run`` with its test clips as exemplars, labelled truly or by the run's recognizer."""
    test = load_training_data(run.config.data).split_subset("test")
    if pseudo_labels:
        predicted = run.recognizer.predict(test).argmax(1).astype(np.int64)
        logger.warning("pseudo-labels: the recognizer labels %.2f%% of the %d test clips right",
                       100 * np.mean(predicted == test.labels), len(test))
        test = dataclasses.replace(test, labels=predicted)
    logger.warning("feature-guidance exemplars: %d TEST clips (diagnostic of the published protocol)", len(test))
    test = dataclasses.replace(test, split=np.full(len(test), "train"))
    fields = {field.name: getattr(run, field.name) for field in dataclasses.fields(run)}
    return PublishedProtocolRun(**fields, test_clips=test)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="co-training run folder")
    parser.add_argument("--per-class", type=int, required=True, help="clips to generate for every class")
    parser.add_argument("--pseudo-labels", action="store_true",
                        help="label the test exemplars with the recognizer's predictions, not their true labels")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="archive to write (.npz)")
    args = parser.parse_args(argv)
    setup_logging()
    run = with_test_exemplars(CoTrainedRun.load(args.run), args.pseudo_labels)
    config = SynthesisConfig(guidance=GuidanceConfig(feature=2.0), per_class=args.per_class, seed=args.seed)
    synthesis = Synthesis(run, config, args.out)
    synthesis.check_plan()
    synthesis.write_plan()
    synthesis.generate(progress=False)
    counts = synthesis.merge()["counts"]
    print(f"archive: {args.out} ({counts['kept']} of {counts['generated']} clips kept)")
    return 0


if __name__ == "__main__":
    run_main(main)

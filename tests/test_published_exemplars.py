"""The diagnostic of the published protocol (benchmarks/diagnostics): its exemplars are the test clips."""

from pathlib import Path

import numpy as np
import pytest

from benchmarks.diagnostics.published_exemplars import with_test_exemplars
from guided_gen.cotrained import CoTrainedRun
from guided_gen.filtering import FilterConfig
from guided_gen.guidance import ExemplarBank, GuidanceConfig
from guided_gen.synthesis import Synthesis, SynthesisConfig
from guided_toy_run import one_torch_thread, toy_run  # noqa: F401 (autouse fixture)
from mdm.data.sources import load_training_data


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> CoTrainedRun:
    return CoTrainedRun.load(toy_run(tmp_path_factory))


def test_exemplars_are_the_test_clips_with_their_true_labels(run: CoTrainedRun, tmp_path: Path) -> None:
    test = load_training_data(run.config.data).split_subset("test")
    leaky = with_test_exemplars(run, pseudo_labels=False)
    config = SynthesisConfig(guidance=GuidanceConfig(feature=1.0, steps=2), per_class=2, batch_size=6,
                             filters=FilterConfig(min_confidence=0.0, copy_threshold=0.0))
    synthesis = Synthesis(leaky, config, tmp_path / "leak.npz")
    synthesis.write_plan()
    synthesis.generate(progress=False)
    shard = synthesis.load_shard(0)
    by_id = dict(zip(test.clip_ids, test.labels))
    assert shard["exemplars"].size == 12 and set(shard["exemplars"].ravel()) <= set(test.clip_ids)
    for label, row in zip(shard["labels"], shard["exemplars"]):
        assert all(by_id[clip] == label for clip in row)
    assert set(synthesis.train_set.clip_ids).isdisjoint(test.clip_ids)  # the near-copy filter stays on training clips


def test_pseudo_labels_are_the_recognizers_predictions(run: CoTrainedRun) -> None:
    test = load_training_data(run.config.data).split_subset("test")
    bank = with_test_exemplars(run, pseudo_labels=True).exemplar_bank(run.training_clips())
    assert bank.clip_ids == test.clip_ids
    assert np.array_equal(bank.labels, run.recognizer.predict(test).argmax(1))


def test_the_real_exemplar_bank_still_refuses_test_clips(run: CoTrainedRun) -> None:
    test = load_training_data(run.config.data).split_subset("test")
    with pytest.raises(ValueError, match="training split only"):
        ExemplarBank.from_dataset(run.recognizer, test, run.feature_stages)

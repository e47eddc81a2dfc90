"""Synthesis: planning, filters and their counts, near-copies, resumable shards, merge, the CLI."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from guided_gen.cotrained import CoTrainedRun
from guided_gen.filtering import FilterConfig, NearCopyIndex, apply_filters
from guided_gen.guidance import GuidanceConfig
from guided_gen.synthesis import Synthesis, SynthesisConfig, plan_labels
from guided_toy_run import one_torch_thread, toy_run  # noqa: F401 (autouse fixture)
from mdm.cli import run_main
from mdm.data.archive import read_archive
from mdm.data.dataset import MotionDataset
from mdm.data.transforms import ClipPipelineConfig, resample, rotate_vertical
from mdm.errors import ConfigError, UserError
from mdm.representation import PositionRepresentation
from mdm.training.objective import fit_feature_stats
from toy_data import toy_dataset

REPO = Path(__file__).resolve().parents[1]
FAST = GuidanceConfig(feature=1.0, classifier=0.2, steps=3)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> CoTrainedRun:
    return CoTrainedRun.load(toy_run(tmp_path_factory))


def _config(**changes: object) -> SynthesisConfig:
    return replace(SynthesisConfig(guidance=FAST, per_class=3, batch_size=4,
                                   filters=FilterConfig(min_confidence=0.0, copy_threshold=0.0)), **changes)


def test_plan_counts_per_class_and_balance() -> None:
    real = np.array([5, 0, 9])
    assert plan_labels(real, 2, None).tolist() == [0, 0, 1, 1, 2, 2]
    assert plan_labels(real, None, 7).tolist() == [0, 0] + [1] * 7
    with pytest.raises(ConfigError, match="exactly one"):
        SynthesisConfig(per_class=2, balance=7)
    with pytest.raises(ConfigError, match="exactly one"):
        SynthesisConfig()


def test_filters_count_each_reason() -> None:
    confidence = np.array([0.9, 0.2, 0.8, 0.1, 0.7])
    distance = np.array([1.0, 1.0, 0.05, 0.01, 0.5])
    keep, counts = apply_filters(confidence, distance, FilterConfig(min_confidence=0.5, copy_threshold=0.1))
    assert keep.tolist() == [True, False, False, False, True]
    assert counts == {"generated": 5, "low_confidence": 2, "near_copy": 2, "dropped": 3, "kept": 2}
    with pytest.raises(ConfigError, match="min-confidence"):
        FilterConfig(min_confidence=1.5)


def test_near_copy_filter_catches_a_copied_training_clip() -> None:
    data = toy_dataset(clips_per_class=6, frames=24)
    train = data.split_subset("train")
    pipeline = ClipPipelineConfig(num_frames=16, view_normalise=True)
    representation = PositionRepresentation(train.skeleton)
    index = NearCopyIndex(train, pipeline, representation, fit_feature_stats(train, pipeline, representation))
    # a generated-length copy, moved and turned (centring and view normalisation undo both), with a little noise
    copy = rotate_vertical(resample(train.clips[4], 16), 0.7, up_axis=1) + np.array([0.5, 0.0, -1.0], np.float32)
    copy += np.random.default_rng(0).normal(0, 1e-4, copy.shape).astype(np.float32)
    others = [resample(clip, 16) for clip in data.split_subset("test").clips[:3]]
    generated = MotionDataset(clips=[copy, *others], labels=np.zeros(4), class_names=data.class_names,
                              skeleton=data.skeleton)
    distance, nearest = index.nearest(generated)
    assert nearest[0] == 4 and distance[0] < 0.01
    assert np.all(distance[1:] > 0.1)  # distinct toy clips are similar, but not that similar
    keep, counts = apply_filters(np.ones(4), distance, FilterConfig(min_confidence=0.0, copy_threshold=0.05))
    assert keep.tolist() == [False, True, True, True] and counts["near_copy"] == 1


def test_shards_resume_and_the_merge_equals_a_single_process(run: CoTrainedRun, tmp_path: Path) -> None:
    split = Synthesis(run, _config(), tmp_path / "split" / "syn.npz")
    split.write_plan()
    assert split.generate(0, 2, progress=False) == [0, 2]  # 9 clips in shards of 4: process 0 of 2 makes 0 and 2
    made = {s: split.shard_path(s).stat().st_mtime_ns for s in (0, 2)}
    assert split.pending() == [1]
    assert split.generate(0, 1, progress=False) == [1]  # a "restart" makes only the missing shard
    assert {s: split.shard_path(s).stat().st_mtime_ns for s in (0, 2)} == made
    split_summary = split.merge()

    single = Synthesis(run, _config(), tmp_path / "single" / "syn.npz")
    single.write_plan()
    assert single.generate(progress=False) == [0, 1, 2]
    single.merge()
    a, b = read_archive(split.out), read_archive(single.out)
    assert a.clip_ids == b.clip_ids and np.array_equal(a.labels, b.labels)
    assert all(np.array_equal(x, y) for x, y in zip(a.clips, b.clips))
    assert len(a) == 9 and a.class_counts() == {"class_0": 3, "class_1": 3, "class_2": 3}
    assert set(a.split) == {"train"} and f"run={run.directory.resolve()}" in a.source and "feature=1" in a.source
    assert json.loads((tmp_path / "split" / "syn.json").read_text())["counts"] == split_summary["counts"]

    train_ids = set(run.training_clips().clip_ids)
    exemplars = np.concatenate([split.load_shard(s)["exemplars"].ravel() for s in range(3)])
    assert len(exemplars) == 18 and set(exemplars) <= train_ids


def test_merge_applies_the_filters_and_reports_counts(run: CoTrainedRun, tmp_path: Path) -> None:
    strict = Synthesis(run, _config(per_class=None, balance=11, filters=FilterConfig(min_confidence=0.4)),
                       tmp_path / "syn.npz")
    strict.write_plan()
    strict.generate(progress=False)
    summary = strict.merge()
    confidence = np.concatenate([strict.load_shard(s)["confidence"] for s in range(len(strict.shards))])
    counts = summary["counts"]
    real = run.training_clips().class_counts()
    assert counts["generated"] == sum(11 - n for n in real.values())
    assert counts["low_confidence"] == int(np.sum(confidence < 0.4))
    assert counts["kept"] == len(read_archive(strict.out)) == counts["generated"] - counts["dropped"]
    assert sum(c["kept"] for c in summary["classes"].values()) == counts["kept"]


def test_shards_of_other_settings_are_refused(run: CoTrainedRun, tmp_path: Path) -> None:
    first = Synthesis(run, _config(), tmp_path / "syn.npz")
    first.write_plan()
    with pytest.raises(UserError, match="other settings"):
        Synthesis(run, _config(seed=1), tmp_path / "syn.npz").check_plan()
    Synthesis(run, _config(filters=FilterConfig(min_confidence=0.9)), tmp_path / "syn.npz").check_plan()


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("generation_cli", REPO / "run/mdm_guided_generation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        run_main(module.main, argv)
    return int(exit_info.value.code), capsys.readouterr().err


def test_cli_writes_the_archive_and_summary(run: CoTrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    out = tmp_path / "cli.npz"
    code, err = _cli(["--run", str(run.directory), "--per-class", "2", "--steps", "2", "--guidance", "cfg=2",
                      "--min-confidence", "0", "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["counts"]["generated"] == 6 and len(read_archive(out)) == summary["counts"]["kept"]
    assert "cfg=2" in summary["source"] and "generated 6 clips" in caplog.text


@pytest.mark.parametrize(("args", "message"), [
    (["--run", "/no/such/run", "--per-class", "2"], "not a co-training run folder"),
    (["--per-class", "2", "--guidance", "feature,loud"], "unknown guidance 'loud'"),
    (["--per-class", "0"], "--per-class must be >= 1"),
    (["--balance", "5", "--out", "syn.txt"], "must end in .npz"),
])
def test_cli_refuses_bad_input_with_one_line(args: list[str], message: str, run: CoTrainedRun, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--run", str(run.directory), "--out", str(tmp_path / "syn.npz"), *args]
    code, err = _cli(argv, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err

"""The evaluator ST-GCN: shapes, graph, learning, training run outputs, exact resume, save/load, CLI refusals."""

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from mdm.cli import run_main
from mdm.config import merge
from mdm.data.archive import read_archive, write_archive
from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import ConfigError, UserError
from mdm.evaluation.bundle import TrainedEvaluator
from mdm.evaluation.stgcn import STGCN, graph_subsets, stgcn_preset
from mdm.evaluation.train import EvaluatorTrainConfig, EvaluatorTrainer
from mdm.skeleton import Skeleton, load_skeleton
from mdm.training.loop import make_eval_loader
from toy_data import toy_archive, toy_dataset

REPO = Path(__file__).resolve().parents[1]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "run" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(archive: Path, epochs: int) -> EvaluatorTrainConfig:
    return merge(EvaluatorTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)}, "preset": "tiny", "pipeline": {"num_frames": 16},
        "batch_size": 8, "epochs": epochs, "log_every": 2, "optim": {"lr": 5e-3, "warmup_steps": 2},
    })


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """These tiny models run fastest on one thread; a busy machine makes more threads much slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny evaluator run on the toy archive: (run folder, archive)."""
    folder = tmp_path_factory.mktemp("evaluator")
    archive = toy_archive(folder / "toy.npz", clips_per_class=12)
    run = EvaluatorTrainer(_config(archive, epochs=2), folder / "run", progress=False).fit()
    return run, archive


def test_output_shapes_and_input_check() -> None:
    config = stgcn_preset("tiny", num_classes=5)
    model = STGCN(config).eval()
    output = model(torch.randn(3, 16, 20, 3))
    assert output.logits.shape == (3, 5) and output.features.shape == (3, config.feature_dim)
    assert model(torch.randn(2, 9, 20, 3)).features.shape == (2, config.feature_dim)  # any number of frames
    with pytest.raises(ValueError, match="evaluator input"):
        model(torch.randn(3, 16, 25, 3))


def test_config_refusals() -> None:
    with pytest.raises(ConfigError, match="streams"):
        stgcn_preset("tiny", streams=("joint", "velocity"))
    with pytest.raises(ConfigError, match="one entry per block"):
        stgcn_preset("tiny", strides=(1,))
    with pytest.raises(ConfigError, match="unknown evaluator preset"):
        stgcn_preset("huge")
    with pytest.raises(ConfigError, match="parents"):
        stgcn_preset("tiny", num_joints=3, parents=(-1, 0))


def test_graph_subsets_partition_the_normalised_skeleton_graph() -> None:
    skeleton = load_skeleton("kinect_v1")
    subsets = graph_subsets(skeleton.parents)
    assert subsets.shape == (3, 20, 20)
    assert torch.allclose(subsets.sum(dim=(0, 2)), torch.ones(20))  # each joint averages itself and its neighbours
    combined = (subsets > 0).float()
    assert torch.equal(combined[1] + combined[2], torch.tensor(skeleton.adjacency))  # parent + children = bones
    child, parent = 5, skeleton.parents[5]
    assert subsets[1, child, parent] > 0 and subsets[2, parent, child] > 0 and subsets[1, parent, child] == 0


def test_loss_falls_on_toy_data() -> None:
    dataset = toy_dataset(clips_per_class=8)
    batch = next(iter(make_eval_loader(dataset, ClipPipelineConfig(num_frames=12, view_normalise=True), 24)))
    torch.manual_seed(0)
    model = STGCN(stgcn_preset("tiny", num_classes=3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(batch["motion"]).logits, batch["label"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])


def test_training_run_writes_a_loadable_evaluator_and_its_test_report(trained: tuple[Path, Path]) -> None:
    run, archive = trained
    for name in ("config.yaml", "log.csv", "curves.png", "summary.txt", "checkpoints/latest",
                 "evaluator/evaluator.yaml", "evaluator/evaluator.safetensors"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    test = read_archive(archive).split_subset("test")
    assert metrics["test"]["num_clips"] == len(test) and metrics["best_epoch"] in (1, 2)
    evaluator = TrainedEvaluator.load(run)
    outputs = evaluator.feature_set(test, "test")
    assert outputs.features.shape == (len(test), 32) and outputs.scores.shape == (len(test), 3)
    assert np.isclose(np.mean(outputs.scores.argmax(1) == test.labels), metrics["test"]["top1"])


def test_save_load_round_trip_gives_the_same_features(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, archive = trained
    evaluator = TrainedEvaluator.load(run / "evaluator")
    copy = TrainedEvaluator.load(evaluator.save(tmp_path / "copy"))
    assert copy.spec == evaluator.spec
    clips = read_archive(archive)
    assert np.array_equal(copy.feature_set(clips, "x").features, evaluator.feature_set(clips, "x").features)
    with pytest.raises(UserError, match="not an evaluator folder"):
        TrainedEvaluator.load(tmp_path)


def test_samples_must_match_skeleton_and_classes(trained: tuple[Path, Path]) -> None:
    run, archive = trained
    evaluator = TrainedEvaluator.load(run)
    clips = read_archive(archive)
    reordered = replace(clips, class_names=["class_2", "class_0", "class_1"])
    assert np.array_equal(evaluator.matching_labels(reordered, "x"), np.array([2, 0, 1])[clips.labels])
    with pytest.raises(UserError, match="unknown to the evaluator"):
        evaluator.matching_labels(replace(clips, class_names=["class_0", "class_1", "jump"]), "x")
    other = Skeleton.from_parents([-1] + list(range(19)), name="chain")
    with pytest.raises(UserError, match="does not match"):
        evaluator.matching_labels(replace(clips, skeleton=other), "x")
    two_person = replace(clips, clips=[np.stack([c, c], axis=1) for c in clips.clips])
    with pytest.raises(UserError, match="one-person"):
        evaluator.matching_labels(two_person, "x")


def test_half_run_plus_resume_equals_straight_run(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=12)
    config = _config(archive, epochs=2)  # 24 training clips: 3 steps an epoch
    EvaluatorTrainer(config, tmp_path / "straight", progress=False).fit()
    EvaluatorTrainer(config, tmp_path / "halves", progress=False).fit(stop_at_step=4)
    torch.manual_seed(99)
    resumed = EvaluatorTrainer(config, tmp_path / "halves", progress=False)
    resumed.resume()
    assert resumed.state.step == 4
    resumed.fit()
    for name in ("model_evaluator", "ema_evaluator"):
        straight = load_file(str(tmp_path / "straight/checkpoints/step_00000006" / f"{name}.safetensors"))
        halves = load_file(str(tmp_path / "halves/checkpoints/step_00000006" / f"{name}.safetensors"))
        assert all(torch.equal(straight[k], halves[k]) for k in straight), name


def test_evaluate_generation_end_to_end(trained: tuple[Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    run, archive = trained
    samples = write_archive(read_archive(archive).split_subset("test"), tmp_path / "samples.npz")
    out = tmp_path / "result.json"
    assert _script("evaluate_generation").main(["--evaluator", str(run), "--samples", str(samples),
                                                "--repeats", "3", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["name"] for row in result["rows"]] == ["real test clips (floor)", str(samples)]
    assert result["protocol"]["set_size"] == 4 and result["protocol"]["repeats"] == 3  # half of the 9 test clips
    assert "FID train" in capsys.readouterr().out


def test_evaluate_generation_by_style_reads_the_second_label(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """Samples whose class is wrong but whose style holds the true class score, repeat by repeat, as the true labels."""
    run, archive = trained
    test = read_archive(archive).split_subset("test")
    true = write_archive(test, tmp_path / "true.npz")
    wrong = (test.labels + 1) % test.num_classes
    styled = write_archive(replace(test, labels=wrong, styles=test.labels, style_names=test.class_names),
                           tmp_path / "styled.npz")
    script = _script("evaluate_generation")

    def accuracies(samples: Path, *label: str) -> list[float]:
        out = tmp_path / f"{samples.stem}{''.join(label)}.json"
        assert script.main(["--evaluator", str(run), "--samples", str(samples), "--repeats", "3",
                            "--json", str(out), *label]) == 0
        return json.loads(out.read_text())["rows"][1]["metrics"]["accuracy"]["values"]

    assert accuracies(styled, "--label", "style") == accuracies(true)
    assert accuracies(styled) != accuracies(true)
    with pytest.raises(UserError, match="carry no styles"):
        script.main(["--evaluator", str(run), "--samples", str(true), "--label", "style"])


@pytest.mark.parametrize(("make_args", "message"), [
    (lambda run, bad: ["--evaluator", str(run.parent)], "not an evaluator folder"),
    (lambda run, bad: ["--evaluator", str(run), "--samples", "/no/such.npz"], "no such file"),
    (lambda run, bad: ["--evaluator", str(run), "--samples", str(bad)], "unknown to the evaluator"),
    (lambda run, bad: ["--evaluator", str(run), "--repeats", "0"], "repeats must be at least 1"),
    (lambda run, bad: ["--evaluator", str(run), "--set-size", "500"], "exceeds"),
])
def test_evaluate_generation_refusals(trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      make_args: object, message: str) -> None:
    run, archive = trained
    bad = write_archive(replace(read_archive(archive), class_names=["a", "b", "c"]), tmp_path / "bad.npz")
    with pytest.raises(SystemExit) as exit_info:
        run_main(_script("evaluate_generation").main, make_args(run, bad))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_train_evaluator_refusals_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    result = subprocess.run([sys.executable, str(REPO / "run/train_evaluator.py"), "--dataset", "nw-ucla",
                             "--data-root", "/no/such/folder"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "not found" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    for args, message in ((["--set", "epochz=3"], "unknown key"), (["--preset", "huge"], "invalid choice")):
        with pytest.raises(SystemExit) as exit_info:
            run_main(_script("train_evaluator").main, args)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err

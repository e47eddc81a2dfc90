"""The mdm and imdm benchmark suites report their headline figures, consistent with their details.

Tiny presets, one warm-up, one repeat, small batches and one thread (a second thread only
waits on a shared 2-core machine): seconds, not a measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.imdm_suite import SuiteConfig, run_suite
from benchmarks.mdm_suite import SuiteConfig as MDMSuiteConfig
from benchmarks.mdm_suite import run_suite as run_mdm_suite
from imdm.models.recognizer import Recognizer, recognizer_preset
from mdm.errors import ConfigError
from mdm.models import MotionDenoiser, count_parameters, denoiser_preset
from mdm.skeleton import load_skeleton

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def _close(a: float, b: float, rel: float = 2e-3) -> bool:
    """Equal up to the 4 significant digits the headline figures keep."""
    return abs(a - b) <= rel * max(abs(a), abs(b))


def test_mdm_suite_through_the_script_reports_the_headline_figures(tmp_path: Path) -> None:
    out = tmp_path / "mdm.json"
    options = ["frames=16", "train_batch=4", "sample_batch=2", "sample_steps=3", "warmup=1", "repeats=1",
               "threads=1", "num_joints=5", "num_channels=3", "num_classes=4"]
    result = subprocess.run([sys.executable, str(SCRIPT), "--suite", "mdm", "--preset", "tiny", "--out", str(out),
                             *[arg for option in options for arg in ("--set", option)]],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["config"]["preset"] == "tiny"
    results = report["results"]
    for key in ("denoiser_params", "train_step_ms_b4", "sample_ms_per_step_b2", "sample_s_b2_steps3",
                "sample_s_b2_steps3_cfg", "published_replica_params", "published_replica_train_step_ms_b4",
                "published_replica_sample_s_b2_steps1000_estimate"):
        assert results[key] > 0, key
    expected = MotionDenoiser(denoiser_preset("tiny", num_joints=5, num_channels=3, num_classes=4))
    assert results["denoiser_params"] == sum(p.numel() for p in expected.parameters())
    assert _close(results["sample_ms_per_step_b2"] * 3, 1000 * results["sample_s_b2_steps3"])
    assert _close(results["train_step_ms_b4"], 1000 * results["train_step"]["ours"]["median_s"])
    assert _close(results["published_replica_sample_s_b2_steps1000_estimate"],
                  1000 * results["forward"]["published_replica_batch2"]["median_s"])
    ratios = results["ratio_ours_to_published"]
    assert _close(ratios["params"], results["denoiser_params"] / results["published_replica_params"])
    assert _close(ratios["train_step_ms_b4"],
                  results["train_step_ms_b4"] / results["published_replica_train_step_ms_b4"], rel=5e-3)
    assert _close(ratios["sample_s_b2_steps3_to_published_replica_sample_s_b2_steps1000_estimate"],
                  results["sample_s_b2_steps3"] / results["published_replica_sample_s_b2_steps1000_estimate"],
                  rel=5e-3)


def test_mdm_suite_in_bf16_times_the_replica_as_published_and_under_the_same_autocast() -> None:
    results = run_mdm_suite(MDMSuiteConfig(preset="tiny", num_joints=5, num_channels=3, num_classes=4, frames=16,
                                           train_batch=4, sample_batch=2, sample_steps=3, warmup=0, repeats=1,
                                           threads=1, sampling=False, mixed_precision="bf16"))
    published = results["published_replica_train_step_ms_b4"]
    autocast = results["published_replica_train_step_ms_b4_autocast"]
    assert published > 0 and autocast > 0
    ratios = results["ratio_ours_to_published"]
    assert _close(ratios["train_step_ms_b4"], results["train_step_ms_b4"] / published, rel=5e-3)
    assert _close(ratios["train_step_ms_b4_autocast"], results["train_step_ms_b4"] / autocast, rel=5e-3)
    with pytest.raises(ConfigError, match="mixed_precision"):
        MDMSuiteConfig(mixed_precision="int8")


@pytest.fixture(scope="module")
def imdm_results() -> dict:
    return run_suite(SuiteConfig(presets=("tiny",), frames=16, batches=(1, 4), train_batch=4, threads=1, warmup=1,
                                 repeats=1, clips_per_run=2, triplet_batch=32, triplet_dim=8))


@pytest.mark.parametrize("name", ["tiny", "published_replica"])
def test_imdm_suite_reports_each_model_s_figures_with_their_spread(imdm_results: dict, name: str) -> None:
    entry = imdm_results[name]
    timings = ("infer_ms_per_clip_b1", "infer_ms_per_clip_b4", "train_step_ms_b4", "cotrain_step_ms_b4")
    assert entry["recognizer_params"] > 0
    for key in timings:
        assert entry[key] > 0, key
        spread = entry["spread"][key]
        assert spread["min"] <= entry[key] <= spread["max"] and spread["runs"] == 1
    assert set(entry["spread"]) == set(timings)


def test_imdm_suite_times_the_four_stream_ensemble_against_one_stream(imdm_results: dict) -> None:
    ensemble = imdm_results["tiny"]["ensemble"]
    assert ensemble["streams"] == ["j", "b", "jm", "bm"] and ensemble["mixed_precision"] == "no"
    for batch in (1, 4):
        for name in ("ensemble", "ensemble_alone"):  # with the test-time turns and without
            ratio = ensemble[f"{name}_ms_per_clip_b{batch}"] / ensemble[f"stream_ms_per_clip_b{batch}"]
            assert ensemble[f"{name}_over_stream"][f"b{batch}"] == pytest.approx(ratio, rel=1e-2)
            assert ratio > 1  # four models cost more than one
    assert "ensemble" not in imdm_results["published_replica"]


def test_imdm_suite_times_the_onnx_graph_beside_pytorch(imdm_results: dict) -> None:
    onnx = imdm_results["tiny"]["onnx"]
    for batch in (1, 4):
        assert onnx[f"onnxruntime_ms_per_clip_b{batch}"] > 0 and onnx[f"pytorch_ms_per_clip_b{batch}"] > 0
    assert onnx["max_abs_difference"] <= 1e-4


def test_imdm_suite_counts_the_preset_s_parameters_and_its_co_trained_denoiser(imdm_results: dict) -> None:
    skeleton = load_skeleton("kinect_v1")
    model = Recognizer(recognizer_preset("tiny", num_joints=skeleton.num_joints, parents=skeleton.parents,
                                         num_classes=10, num_frames=16))
    entry = imdm_results["tiny"]
    assert entry["recognizer_params"] == count_parameters(model) and entry["frames"] == 16
    assert entry["feature_dims"] == list(model.feature_dims)
    setup = entry["cotrain_setup"]
    assert setup["denoiser_preset"] == "tiny" and setup["denoiser_params"] > 0 and setup["frames"] == 16


def test_imdm_suite_times_a_recipe_s_recognizer_with_its_overrides() -> None:
    overrides = {"widths": [8, 24], "ff": [16, 48], "joint_stages": 2}
    results = run_suite(SuiteConfig(presets=("tiny",), frames=16, batches=(2,), train_batch=4, threads=1, warmup=0,
                                    repeats=1, clips_per_run=2, reference=False, triplet_batch=8, triplet_dim=4,
                                    recognizer_overrides=overrides))
    skeleton = load_skeleton("kinect_v1")

    def recipe_recognizer(num_classes: int) -> Recognizer:
        return Recognizer(recognizer_preset("tiny", num_joints=skeleton.num_joints, parents=skeleton.parents,
                                            num_classes=num_classes, num_frames=16, **overrides))

    entry = results["tiny"]
    timed = recipe_recognizer(num_classes=10)
    assert entry["recognizer_params"] == count_parameters(timed) and entry["feature_dims"] == list(timed.feature_dims)
    # The co-training step trains the same recognizer on the built-in data's 12 classes.
    assert entry["cotrain_setup"]["recognizer_params"] == count_parameters(recipe_recognizer(num_classes=12))
    assert entry["infer_ms_per_clip_b2"] > 0 and entry["cotrain_step_ms_b4"] > 0


def test_imdm_suite_ratios_are_ours_over_published(imdm_results: dict) -> None:
    ours, published = imdm_results["tiny"], imdm_results["published_replica"]
    ratios = ours["ratio_to_published"]
    assert set(ratios) == {"recognizer_params", "infer_ms_per_clip_b1", "infer_ms_per_clip_b4", "train_step_ms_b4",
                           "cotrain_step_ms_b4"}
    for key, ratio in ratios.items():
        assert _close(ratio, ours[key] / published[key]), key


def test_imdm_suite_times_the_triplet_loss_once(imdm_results: dict) -> None:
    assert imdm_results["triplet_ms_b32_d8"] > 0 and imdm_results["triplet_backward_ms_b32_d8"] > 0
    assert imdm_results["triplet_spread"]["triplet_ms_b32_d8"]["runs"] == 3
    assert imdm_results["threads"] == 1



def test_imdm_suite_in_bf16_times_the_published_pair_as_published_and_under_the_same_autocast(tmp_path: Path) -> None:
    # Through the script: Accelerate fixes one precision per process.
    out = tmp_path / "imdm.json"
    options = ["presets=[tiny]", "frames=16", "batches=[2]", "train_batch=4", "threads=1", "warmup=0", "repeats=1",
               "clips_per_run=2", "triplet_batch=8", "triplet_dim=4", "mixed_precision=bf16"]
    result = subprocess.run([sys.executable, str(SCRIPT), "--suite", "imdm", "--out", str(out),
                             *[arg for option in options for arg in ("--set", option)]],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())["results"]
    ours, published = results["tiny"], results["published_replica"]
    assert ours["cotrain_setup"]["mixed_precision"] == ours["ensemble"]["mixed_precision"] == "bf16"
    assert published["cotrain_step_ms_b4"] > 0 and published["cotrain_step_ms_b4_autocast"] > 0
    assert "cotrain_step_ms_b4_autocast" not in ours
    ratios = ours["ratio_to_published"]
    assert _close(ratios["cotrain_step_ms_b4"], ours["cotrain_step_ms_b4"] / published["cotrain_step_ms_b4"])
    assert _close(ratios["cotrain_step_ms_b4_autocast"],
                  ours["cotrain_step_ms_b4"] / published["cotrain_step_ms_b4_autocast"])

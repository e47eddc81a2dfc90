"""Guided sampling: exemplars from training clips only, each guidance acts, the scales compose as documented."""

from pathlib import Path

import numpy as np
import pytest
import torch

from guided_gen.cotrained import CoTrainedRun
from guided_gen.guidance import (ClassifierGuidance, ExemplarBank, GuidanceConfig, GuidedSampler, parse_guidance,
                                 recognizer_input)
from guided_toy_run import one_torch_thread, toy_run  # noqa: F401 (autouse fixture)
from mdm.data.sources import load_training_data
from mdm.data.transforms import ClipPipelineConfig, prepare_clip, rotation_about_axis
from mdm.errors import ConfigError, UserError
from mdm.generator import SamplingConfig
from mdm.skeleton import load_skeleton
from toy_data import toy_dataset

STEPS = 5


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> CoTrainedRun:
    return CoTrainedRun.load(toy_run(tmp_path_factory))


@pytest.fixture(scope="module")
def bank(run: CoTrainedRun) -> ExemplarBank:
    return run.exemplar_bank(run.training_clips())


def _sample(run: CoTrainedRun, bank: ExemplarBank, labels: torch.Tensor, seed: int = 0,
            **scales: float) -> torch.Tensor:
    sampler = GuidedSampler(run.generator, run.recognizer, bank, GuidanceConfig(steps=STEPS, **scales))
    motion, _ = sampler.sample(labels, noise=torch.Generator().manual_seed(seed), rng=np.random.default_rng(seed))
    return motion


def test_parse_guidance_gives_defaults_and_refuses_unknown_names() -> None:
    assert parse_guidance("none") == {"feature": 0.0, "cfg": 1.0, "classifier": 0.0}
    assert parse_guidance("feature,cfg=3") == {"feature": 2.0, "cfg": 3.0, "classifier": 0.0}
    assert parse_guidance("classifier=0.5")["classifier"] == 0.5
    with pytest.raises(ConfigError, match="unknown guidance 'clasifier'"):
        parse_guidance("clasifier")
    with pytest.raises(ConfigError, match="not a number"):
        parse_guidance("cfg=high")
    with pytest.raises(ConfigError, match="exemplar mode"):
        GuidanceConfig(exemplar_mode="median")


@pytest.mark.parametrize(("centre", "upright", "view", "reference"),
                         [("first_frame", False, True, "first_frame"), ("first_frame", True, True, "first_frame"),
                          ("per_frame", True, False, "first_frame"), ("none", False, False, "first_frame"),
                          ("first_frame", True, True, "clip")])
def test_recognizer_input_equals_the_numpy_evaluation_pipeline(centre: str, upright: bool, view: bool,
                                                               reference: str) -> None:
    skeleton = load_skeleton("kinect_v1")
    pipeline = ClipPipelineConfig(num_frames=16, centre=centre, upright=upright, view_normalise=view,
                                  view_reference=reference)
    rng = np.random.default_rng(0)
    clips = toy_dataset(clips_per_class=2, frames=16).clips[:4]
    # Turn and tilt each clip so the upright and view normalisations have work to do.
    yaws, pitches = rng.uniform(-np.pi, np.pi, len(clips)), rng.uniform(-0.5, 0.5, len(clips))
    turned = [clip @ (rotation_about_axis(yaw, 1) @ rotation_about_axis(pitch, 0)).astype(np.float32).T
              for clip, yaw, pitch in zip(clips, yaws, pitches)]
    expected = np.stack([prepare_clip(clip, skeleton, pipeline, False, rng)[0] for clip in turned])
    actual = recognizer_input(torch.as_tensor(np.stack(turned)), skeleton, pipeline).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_exemplars_come_from_training_clips_only(run: CoTrainedRun, bank: ExemplarBank) -> None:
    data = load_training_data(run.config.data)
    held_out = {c for c, s in zip(data.clip_ids, data.split) if s != "train"}
    training = {c for c, s in zip(data.clip_ids, data.split) if s == "train"}
    assert held_out and set(bank.clip_ids) == training
    labels = np.array([0, 1, 2] * 10)
    _, chosen = bank.draw(labels, 2, "interpolate", np.random.default_rng(0))
    assert not {bank.clip_ids[i] for i in chosen.ravel()} & held_out
    assert np.all(bank.labels[chosen] == labels[:, None])
    with pytest.raises(ValueError, match="training split only"):
        ExemplarBank.from_dataset(run.recognizer, data, run.feature_stages)


def test_exemplar_features_are_a_mean_or_a_convex_mix(bank: ExemplarBank) -> None:
    labels = np.array([1, 1, 2])
    mean, chosen = bank.draw(labels, 2, "mean", np.random.default_rng(3))
    for stage, feature in zip(bank.features, mean):
        torch.testing.assert_close(feature, stage[torch.as_tensor(chosen)].mean(1))
    mixed, chosen = bank.draw(labels, 2, "interpolate", np.random.default_rng(4))
    first, second = (bank.features[0][torch.as_tensor(chosen[:, k])] for k in range(2))
    weight = ((mixed[0] - second) * (first - second)).sum((1, 2)) / (first - second).square().sum((1, 2))
    assert torch.all((weight >= 0) & (weight <= 1))
    torch.testing.assert_close(mixed[0], weight[:, None, None] * first + (1 - weight[:, None, None]) * second)


def test_each_guidance_changes_the_samples_and_seeds_reproduce_them(run: CoTrainedRun, bank: ExemplarBank) -> None:
    labels = torch.tensor([0, 1, 2, 0])
    plain = _sample(run, bank, labels)
    torch.testing.assert_close(_sample(run, bank, labels), plain, rtol=0, atol=0)
    for scales in ({"feature": 1.0}, {"cfg": 2.5}, {"classifier": 0.5}):
        assert (_sample(run, bank, labels, **scales) - plain).abs().mean() > 1e-3, scales


def test_scales_reduce_to_plain_conditioning_and_to_cfg(run: CoTrainedRun, bank: ExemplarBank) -> None:
    labels = torch.tensor([2, 0, 1])
    features, _ = bank.draw(labels.numpy(), 2, "interpolate", np.random.default_rng(0))
    conditioned = run.generator.generate(labels, SamplingConfig(steps=STEPS),
                                         generator=torch.Generator().manual_seed(0), features=features)
    torch.testing.assert_close(_sample(run, bank, labels, feature=1.0), conditioned)
    cfg = run.generator.generate(labels, SamplingConfig(steps=STEPS, guidance_scale=2.0),
                                 generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(_sample(run, bank, labels, cfg=2.0), cfg)


def test_classifier_guidance_raises_the_target_class_probability(run: CoTrainedRun, bank: ExemplarBank) -> None:
    labels = torch.tensor([0, 1, 2] * 4)

    def target_probability(motion: torch.Tensor) -> torch.Tensor:
        clips = recognizer_input(motion, run.generator.skeleton, run.recognizer.spec.pipeline)
        with torch.no_grad():
            probabilities = run.recognizer.model(clips).logits.softmax(-1)
        return probabilities.gather(1, labels[:, None]).squeeze(1)

    # Small steps: at several feature standard deviations per step the samples overshoot (a
    # recognizer trained on the GPU then gave class 1 less probability at 0.5 than without guidance).
    without = target_probability(_sample(run, bank, labels, seed=1))
    weak = target_probability(_sample(run, bank, labels, seed=1, classifier=0.05))
    strong = target_probability(_sample(run, bank, labels, seed=1, classifier=0.2))
    assert without.mean() + 0.002 < weak.mean() < strong.mean()
    assert (strong > without).float().mean() >= 0.75


def test_one_classifier_step_raises_every_samples_log_probability_by_a_step_of_the_scale(run: CoTrainedRun) -> None:
    labels = torch.tensor([0, 1, 2] * 4)
    hook = ClassifierGuidance(run.generator, run.recognizer, labels, scale=0.01)
    representation = run.generator.representation
    x0 = torch.randn(len(labels), run.generator.spec.num_frames, representation.num_slots,
                     representation.num_channels, generator=torch.Generator().manual_seed(0))
    moved = hook(x0, x0, torch.zeros(len(labels), dtype=torch.long))
    step_rms = (moved - x0).flatten(1).square().mean(1).sqrt()
    torch.testing.assert_close(step_rms, torch.full_like(step_rms, 0.01))
    with torch.no_grad():
        assert torch.all(hook.log_probability(moved) > hook.log_probability(x0))


def test_feature_guidance_without_exemplars_is_refused(run: CoTrainedRun) -> None:
    with pytest.raises(ConfigError, match="exemplar bank"):
        GuidedSampler(run.generator, run.recognizer, None, GuidanceConfig(feature=1.0))


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a co-training run folder"):
        CoTrainedRun.load(tmp_path)

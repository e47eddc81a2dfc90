"""Generation metrics on known cases: FID closed forms, zero diversity/multimodality, accuracy, the protocol."""

import numpy as np
import pytest
import scipy.linalg

from mdm.errors import ConfigError
from mdm.evaluation.bundle import FeatureSet
from mdm.evaluation.evaluate import FLOOR_ROW, METRICS, ProtocolConfig, format_table, protocol_set_size, run_protocol
from mdm.evaluation.metrics import (
    accuracy,
    classification_summary,
    diversity,
    fid,
    frechet_distance,
    gaussian_statistics,
    mean_and_interval,
    multimodality,
    top_k_accuracy,
)


def _random_covariance(rng: np.random.Generator, dim: int) -> np.ndarray:
    factor = rng.normal(size=(dim, dim))
    return factor @ factor.T / dim + 0.1 * np.eye(dim)


def test_fid_of_a_set_with_itself_is_zero() -> None:
    features = np.random.default_rng(0).normal(size=(300, 16)) * 3.0 + 5.0
    assert fid(features, features) == pytest.approx(0.0, abs=1e-8)


def test_fid_is_zero_for_a_singular_covariance_too() -> None:
    features = np.random.default_rng(1).normal(size=(10, 32))  # 10 clips, 32 dims: covariance of rank 9
    assert fid(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form_of_diagonal_gaussians() -> None:
    mean1, mean2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    std1, std2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    expected = np.sum((mean1 - mean2) ** 2) + np.sum((std1 - std2) ** 2)  # 5 + 5 = 10
    assert frechet_distance(mean1, np.diag(std1**2), mean2, np.diag(std2**2)) == pytest.approx(expected)
    assert expected == pytest.approx(10.0)


def test_frechet_distance_matches_scipy_sqrtm_for_full_covariances() -> None:
    rng = np.random.default_rng(2)
    cov1, cov2 = _random_covariance(rng, 8), _random_covariance(rng, 8)
    mean1, mean2 = rng.normal(size=8), rng.normal(size=8)
    covmean = scipy.linalg.sqrtm(cov1 @ cov2).real
    expected = np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean)
    assert frechet_distance(mean1, cov1, mean2, cov2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mean1, cov1, mean2, cov2) == pytest.approx(frechet_distance(mean2, cov2, mean1, cov1))


def test_fid_of_large_samples_approaches_the_gaussians_closed_form() -> None:
    rng = np.random.default_rng(3)
    cov1, cov2 = _random_covariance(rng, 4), _random_covariance(rng, 4)
    mean1, mean2 = np.zeros(4), np.array([1.0, -1.0, 0.5, 0.0])
    exact = frechet_distance(mean1, cov1, mean2, cov2)
    samples1 = rng.multivariate_normal(mean1, cov1, size=200_000)
    samples2 = rng.multivariate_normal(mean2, cov2, size=200_000)
    assert fid(samples1, samples2) == pytest.approx(exact, rel=0.02)
    mean, cov = gaussian_statistics(samples1)
    assert np.allclose(mean, mean1, atol=0.02) and np.allclose(cov, cov1, atol=0.03)


def test_fid_needs_two_clips() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        fid(np.zeros((1, 3)), np.zeros((5, 3)))


def test_diversity_of_identical_clips_is_zero_and_known_for_two_points() -> None:
    rng = np.random.default_rng(4)
    assert diversity(np.ones((50, 8)), 200, rng) == 0.0
    two = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert diversity(two, 200, rng) == pytest.approx(5.0)  # pairs are always of two different clips
    with pytest.raises(ValueError, match="at least 2"):
        diversity(two[:1], 10, rng)


def test_multimodality_of_identical_within_class_clips_is_zero() -> None:
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(4), 10)
    features = np.eye(4)[labels] * 10.0  # classes far apart, clips within a class identical
    assert multimodality(features, labels, 20, rng) == 0.0
    assert diversity(features, 200, rng) > 5.0


def test_multimodality_averages_within_class_distances_and_skips_singletons() -> None:
    rng = np.random.default_rng(6)
    features = np.array([[0.0], [2.0], [10.0], [10.0], [100.0]])
    labels = np.array([0, 0, 1, 1, 2])  # class 0: distance 2; class 1: 0; class 2: one clip, left out
    assert multimodality(features, labels, 20, rng) == pytest.approx(1.0)
    assert np.isnan(multimodality(features[:1], labels[:1], 20, rng))


def test_accuracy_on_perfectly_separable_toy_features() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 5, 100)
    centres = np.eye(5) * 4.0
    features = centres[labels] + rng.uniform(-1, 1, (100, 5))
    scores = -np.linalg.norm(features[:, None] - centres[None], axis=2)  # nearest centre
    assert accuracy(scores, labels) == 1.0
    assert accuracy(scores, (labels + 1) % 5) == 0.0
    assert top_k_accuracy(scores, (labels + 1) % 5, 5) == 1.0
    summary = classification_summary(scores, labels, [f"c{k}" for k in range(5)])
    assert summary["top1"] == 1.0 and np.trace(np.array(summary["confusion_matrix"])) == 100


def test_mean_and_interval_follow_the_published_convention() -> None:
    mean, interval = mean_and_interval([1.0, 3.0, 1.0, 3.0])
    assert mean == 2.0 and interval == pytest.approx(1.96 * 1.0 / 2.0)
    assert mean_and_interval([4.0]) == (4.0, 0.0)


def _feature_set(rng: np.random.Generator, count: int, shift: float = 0.0, classes: int = 3) -> FeatureSet:
    labels = np.arange(count) % classes
    features = rng.normal(size=(count, 4)) + np.eye(classes, 4)[labels] * 3.0 + shift
    scores = np.eye(classes)[labels].astype(np.float32)
    return FeatureSet(features=features, scores=scores, labels=labels)


def test_protocol_rows_sizes_and_intervals() -> None:
    rng = np.random.default_rng(8)
    train, test = _feature_set(rng, 120), _feature_set(rng, 60)
    good, shifted = _feature_set(rng, 45), _feature_set(rng, 90, shift=4.0)
    result = run_protocol(train, test, {"good.npz": good, "shifted.npz": shifted}, ProtocolConfig(repeats=5))
    assert result["protocol"]["set_size"] == 30  # half of the 60 test clips
    names = [row["name"] for row in result["rows"]]
    assert names == [FLOOR_ROW, "good.npz", "shifted.npz"]
    rows = {row["name"]: row["metrics"] for row in result["rows"]}
    for metrics in rows.values():
        assert set(metrics) == set(METRICS) and all(len(m["values"]) == 5 for m in metrics.values())
        assert metrics["accuracy"]["mean"] == 1.0 and metrics["accuracy"]["interval95"] == 0.0
    assert rows["shifted.npz"]["fid_train"]["mean"] > 10 * rows["good.npz"]["fid_train"]["mean"]
    assert rows["shifted.npz"]["fid_test"]["mean"] > 10 * rows[FLOOR_ROW]["fid_test"]["mean"]
    assert rows["good.npz"]["fid_train"]["interval95"] > 0.0
    again = run_protocol(train, test, {"good.npz": good, "shifted.npz": shifted}, ProtocolConfig(repeats=5))
    assert again == result  # seeded
    table = format_table(result)
    assert FLOOR_ROW in table and "shifted.npz" in table and "±" in table


def test_protocol_set_size_refusals() -> None:
    assert protocol_set_size(100, 40, {"a.npz": 50, "b.npz": 30}, None) == 20
    assert protocol_set_size(100, 40, {}, 10) == 10
    with pytest.raises(ConfigError, match=r"exceeds the clips of b.npz \(30\)"):
        protocol_set_size(100, 400, {"a.npz": 50, "b.npz": 30}, 40)
    with pytest.raises(ConfigError, match="too few"):
        protocol_set_size(100, 3, {"a.npz": 50}, None)
    with pytest.raises(ConfigError, match="repeats"):
        ProtocolConfig(repeats=0)

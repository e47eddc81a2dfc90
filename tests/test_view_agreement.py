"""Agreement of the view normalisation across the cameras of one performance (benchmarks/diagnostics)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.diagnostics.view_agreement import main, residual_yaw_deg, view_agreement
from mdm.data.archive import write_archive
from mdm.data.dataset import MotionDataset
from mdm.data.transforms import VIEW_REFERENCES, recognition_pipeline, rotate_vertical
from mdm.errors import ConfigError
from tests.toy_data import toy_dataset


def test_residual_yaw_recovers_a_turn_about_the_vertical_axis() -> None:
    clip = toy_dataset(clips_per_class=1).clips[0]
    for degrees in (25.0, -140.0, 0.0):
        turned = rotate_vertical(clip, np.deg2rad(degrees), up_axis=1)
        assert residual_yaw_deg(clip, turned, up_axis=1) == pytest.approx(degrees, abs=1e-3)
    with pytest.raises(ValueError, match="one shape"):
        residual_yaw_deg(clip, clip[:-1], up_axis=1)


def two_camera_dataset(yaws_deg: np.ndarray) -> MotionDataset:
    """Each toy clip seen by a second camera turned by ``yaws_deg`` about the vertical axis."""
    toy = toy_dataset(clips_per_class=2)
    clips, ids = [], []
    for index, (clip, yaw) in enumerate(zip(toy.clips, yaws_deg)):
        clips += [clip, rotate_vertical(clip, np.deg2rad(yaw), up_axis=1)]
        ids += [f"a{index:02d}_v01", f"a{index:02d}_v02"]
    return MotionDataset(clips=clips, labels=np.repeat(toy.labels, 2), class_names=toy.class_names,
                         skeleton=toy.skeleton, clip_ids=ids, split=np.full(len(clips), "train"))


def test_view_agreement_measures_what_the_normalisation_leaves() -> None:
    yaws = np.random.default_rng(0).uniform(-120, 120, size=6)
    dataset = two_camera_dataset(yaws)
    unnormalised = dataclasses.replace(recognition_pipeline(), view_normalise=False, upright=False)
    raw = view_agreement(dataset, unnormalised)
    np.testing.assert_allclose(raw.yaw_deg, yaws, atol=1e-2)
    for reference in ("first_frame", "clip"):
        normalised = view_agreement(dataset, dataclasses.replace(recognition_pipeline(), view_reference=reference))
        assert np.abs(normalised.yaw_deg).max() < 0.5
        summary = normalised.summary()
        assert summary["pairs"] == 6 and summary["within_10_deg"] == 1.0
        assert set(summary["median_deg_per_class"]) == set(dataset.class_names)


def test_view_agreement_refuses_data_without_two_views_of_a_performance() -> None:
    with pytest.raises(ConfigError, match="no two train clips show one performance"):
        view_agreement(toy_dataset(clips_per_class=2), recognition_pipeline())


def test_the_script_prints_and_writes_one_summary_per_view_reference(tmp_path: Path, capsys) -> None:
    archive = write_archive(two_camera_dataset(np.full(6, 90.0)), tmp_path / "two_cameras.npz")
    out = tmp_path / "agreement.json"
    assert main(["--dataset", "archive", "--data-root", str(archive), "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["split"] == "train" and list(figures["references"]) == list(VIEW_REFERENCES)
    for summary in figures["references"].values():
        assert summary["pairs"] >= 1 and summary["median_deg"] < 0.5
    printed = capsys.readouterr().out
    assert all(reference in printed for reference in VIEW_REFERENCES)

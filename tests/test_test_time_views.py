"""The test-time views diagnostic (benchmarks/diagnostics): mirrored and turned clips, an ensemble scored on its views."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from toy_data import toy_archive

from benchmarks.diagnostics.test_time_views import main, mirrored, spread_turns, view_report
from imdm.training.cotrain import CoTrainConfig
from imdm.training.ensemble import train_ensemble
from mdm.config import merge
from mdm.skeleton import load_skeleton


def test_a_mirror_swaps_sides_and_twice_is_the_clip() -> None:
    skeleton = load_skeleton("kinect_v1")
    motion = torch.randn(2, 5, skeleton.num_joints, 3)
    once = mirrored(motion, skeleton)
    left, right = skeleton.mirror_pairs[0]
    assert torch.allclose(once[..., left, 0], -motion[..., right, 0])
    assert torch.allclose(once[..., left, 1:], motion[..., right, 1:])
    assert torch.allclose(mirrored(once, skeleton), motion)
    padding = torch.zeros(1, 3, skeleton.num_joints, 3)
    assert torch.equal(mirrored(padding, skeleton), padding)


def test_spread_turns_span_the_test_turns_evenly_one_per_member() -> None:
    assert np.allclose(spread_turns(4), [-20.0, -20.0 / 3, 20.0 / 3, 20.0])
    assert np.allclose(spread_turns(2), [-20.0, 20.0])


def test_the_clip_alone_reproduces_the_ensemble_and_every_view_set_is_scored(tmp_path: Path,
                                                                            monkeypatch) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=12)
    config = merge(CoTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)}, "pipeline": {"num_frames": 16},
        "recognizer": {"preset": "tiny", "optim": {"lr": 1e-2, "warmup_steps": 2}},
        "generator": {"enabled": False}, "batch_size": 8, "epochs": 4, "render_samples": False,
    })
    metrics = train_ensemble(config, ["j", "b"], tmp_path / "ens", progress=False)
    assert metrics is not None
    monkeypatch.chdir(tmp_path)
    report, members = view_report(tmp_path / "ens")
    assert set(report) == set(members) == {"none", "mirror", "turns", "spread"}
    assert all(0.0 <= top1 <= 1.0 for top1 in report.values())
    assert np.isclose(report["turns"], metrics["test"]["top1"])  # what the ensemble does
    stream_metrics = json.loads((tmp_path / "ens" / "j" / "metrics.json").read_text())
    assert len(members["none"]) == 2 and np.isclose(members["none"][0], stream_metrics["test"]["top1"])
    out = tmp_path / "views.json"
    assert main([str(tmp_path / "ens"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())[str(tmp_path / "ens")] == {"ensemble": report, "members": members}

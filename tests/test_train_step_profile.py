"""The training-step profile (benchmarks/diagnostics): its figures are consistent and it names operators."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.diagnostics.train_step_profile import main
from tests.toy_data import toy_archive


def test_profile_times_data_and_step_and_lists_operators(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=8)
    out = tmp_path / "profile.json"
    main(["--dataset", "archive", "--data-root", str(archive), "--preset", "tiny", "--set", "batch_size=4",
          "--set", "pipeline.num_frames=16", "--steps", "2", "--warmup", "1", "--profiled", "1", "--json", str(out)])
    figures = json.loads(out.read_text())
    assert figures["batch_size"] == 4 and figures["step_ms"] > 0 and figures["data_ms_per_batch"] > 0
    assert 0 < figures["data_share"] < 1
    assert len(figures["top_ops_by_self_cpu"]) > 3 and all(row["cpu_ms_per_step"] >= 0 for row in figures["top_ops_by_self_cpu"])

"""The BVH round-trip diagnostic (benchmarks/diagnostics) measures near-zero angles on the procedural data."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.diagnostics.bvh_round_trip import main


def test_the_round_trip_keeps_bone_directions_on_the_procedural_data(tmp_path: Path) -> None:
    out = tmp_path / "round_trip.json"
    assert main(["--clips", "4", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["clips"] == 4 and 0 <= figures["p99_deg"] <= figures["max_deg"] < 0.5

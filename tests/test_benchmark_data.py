"""The data benchmark suite and benchmarks/run.py, on a tiny NW-UCLA-format folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from format_files import write_nw_ucla_clip

from benchmarks.data_suite import SuiteConfig, run_suite

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    folder = tmp_path / "all_sqe"
    write_nw_ucla_clip(folder, action=1, subject=1, episode=0, view=1, frames=2)
    write_nw_ucla_clip(folder, action=1, subject=1, episode=0, view=3, frames=5)
    write_nw_ucla_clip(folder, action=12, subject=2, episode=0, view=3, frames=1)
    return folder


def test_data_suite_counts_kept_and_dropped_per_class_and_view(clips: Path) -> None:
    results = run_suite(SuiteConfig(data_dir=str(clips), read_repeats=2, load_repeats=3, min_frames=2))
    assert results["clips_in_folder"] == 3 and results["frames_in_folder"] == 8
    assert len(results["read_folder_seconds"]) == 2 and len(results["archive_load_seconds"]) == 3
    assert results["archive_load_seconds_median"] > 0 and results["archive_bytes"] > 0
    counts = results["counts"]
    assert counts["kept"] == 2 and counts["dropped"] == 1 and counts["dropped_ids"] == ["a12_s02_e00_v03"]
    assert counts["per_class"]["pick up with one hand"] == {"kept": 2, "dropped": 0}
    assert counts["per_class"]["carry"] == {"kept": 0, "dropped": 1}
    assert counts["per_view"] == {"1": {"kept": 1, "dropped": 0}, "3": {"kept": 1, "dropped": 1}}


def test_benchmark_script_writes_json_with_command_machine_and_config(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--suite", "data", "--set", f"data_dir={clips}", "--set", "read_repeats=1",
         "--set", "load_repeats=1", "--set", "min_frames=3", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["suite"] == "data" and "--suite data" in report["command"]
    assert report["config"]["min_frames"] == 3 and report["machine"]["cpu_count"] >= 1
    assert report["results"]["counts"]["dropped"] == 2


def test_benchmark_script_refuses_an_unknown_option_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--suite", "data", "--set", "repeats=2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "repeats" in result.stderr

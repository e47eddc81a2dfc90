"""Run one benchmark suite and write its figures as JSON.

    python benchmarks/run.py --suite data [--out outputs/bench_data.json] [--set read_repeats=5]
    python benchmarks/run.py --suite mdm --preset paper --out outputs/bench_mdm_paper.json

Each suite is a module of ``benchmarks/`` exposing ``SuiteConfig`` (a dataclass of its options,
all with defaults) and ``run_suite(config) -> dict`` (JSON-ready figures); add a suite by adding
one line to :data:`SUITES`. The JSON holds the command, the machine, the resolved config
and the figures, so every number can be traced to how it was produced.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import logging
import os
import platform
import sys
from pathlib import Path

import numpy as np

from mdm.cli import parse_key_value, run_main
from mdm.config import from_dict, load_yaml, merge, to_dict

# benchmarks/ is not installed: the repository root on the path lets SUITES' modules import.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SUITES: dict[str, str] = {
    "data": "benchmarks.data_suite",
    "mdm": "benchmarks.mdm_suite",
    "imdm": "benchmarks.imdm_suite",
    "generation": "benchmarks.generation_suite",
    "render": "benchmarks.render_suite",
}
"""Suite name -> module with ``SuiteConfig`` and ``run_suite``."""


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        # OpenMP's idle threads spin by default; PASSIVE makes them sleep, which slows every small
        # parallel op (the recognizer at batch 1: 2.6x), so the figures name the policy they ran under.
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (active spin)"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True, choices=sorted(SUITES), help="which suite to run")
    parser.add_argument("--config", help="YAML file of the suite's options")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one option of the suite (repeatable), e.g. read_repeats=5")
    parser.add_argument("--preset", help="shorthand for --set preset=NAME (suites timing one preset, e.g. mdm) "
                        "or --set presets=[NAME] (suites timing several, e.g. imdm)")
    parser.add_argument("--out", help="write the figures to this JSON file (default: print only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    suite = importlib.import_module(SUITES[args.suite])
    config = from_dict(suite.SuiteConfig, load_yaml(args.config), args.config) if args.config else suite.SuiteConfig()
    config = merge(config, dict(parse_key_value(text, "--set") for text in args.set), "--set")
    if args.preset:
        key = "preset" if hasattr(config, "preset") else "presets"
        config = merge(config, {key: args.preset if key == "preset" else [args.preset]}, "--preset")
    date, load_before = datetime.datetime.now(datetime.timezone.utc), os.getloadavg()[0]
    results = suite.run_suite(config)
    report = {
        "suite": args.suite,
        "command": " ".join(["python", *sys.argv]),
        "date_utc": date.isoformat(timespec="seconds"),
        "machine": {**machine(), "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]}},
        "config": to_dict(config),
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)

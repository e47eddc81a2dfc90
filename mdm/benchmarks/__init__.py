"""Benchmark suites run by ``run/benchmark.py``: each module exposes ``SuiteConfig`` and ``run_suite``."""

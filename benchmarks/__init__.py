"""Measurement code, not installed: the benchmark suites run by ``benchmarks/run.py`` (each module
``*_suite`` exposes ``SuiteConfig`` and ``run_suite``) and the one-experiment diagnostics in
``benchmarks/diagnostics``. It imports the packages; they never import it."""

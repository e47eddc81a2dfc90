"""Diagnostics: code that served one experiment (docs/results.md), kept running by the tests; not tools."""

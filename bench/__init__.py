"""Benchmarks with their results table in README.md; run as ``python -m bench.<name>``."""

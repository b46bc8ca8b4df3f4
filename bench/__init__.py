"""Benchmarks: `make bench` runs bench/run.py and writes BENCHMARKS.md."""

"""Helpers the benchmark scripts share (not benchmarks themselves: make bench runs
benchmarks/*.py only)."""

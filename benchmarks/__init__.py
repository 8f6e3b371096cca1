"""Benchmarks: `python -m benchmarks.generation` measures the engine and writes docs/benchmarks.md."""

"""Benchmarks of issue 10: side-by-side ratios on loopback, written to bench/results.json."""

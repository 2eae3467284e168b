"""Benchmarks: our code against its baselines, timed side by side in one process."""

"""Benchmarks: figures as ratios against raw baselines measured in the same run (machines are noisy)."""

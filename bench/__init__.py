"""Benchmarks, runnable one by one: `python -m bench.<name>`."""

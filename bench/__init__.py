"""Benchmarks run with ``python -m bench`` (``make bench``); results go to ``bench-results/``."""

"""Helpers that start real cnnlab processes and stacks, shared by the tests and the benchmarks."""

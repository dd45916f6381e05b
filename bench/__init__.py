"""Benchmarks: run on this machine, never asserted in unit tests."""

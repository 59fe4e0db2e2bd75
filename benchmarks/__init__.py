"""Loopback benchmarks for freedompay_async (see docs/benchmarks.md)."""

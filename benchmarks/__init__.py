"""Loopback benchmarks for freedompay_async (see the README's "Benchmarks" section)."""

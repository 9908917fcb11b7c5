"""Benchmarks: the ledger against raw PostgreSQL and raw Kafka, measured in the same run.

Run with `make bench` (or `make bench QUICK=1`), i.e. `python -m tests.benchmarks`.
Modules are named `bench_*.py` so pytest never collects them; see docs/benchmarks.md.
"""

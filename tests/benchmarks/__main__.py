"""`python -m tests.benchmarks [--quick] ...`: see tests/benchmarks/bench_runner.py."""

from __future__ import annotations

from tests.benchmarks.bench_runner import main

raise SystemExit(main())

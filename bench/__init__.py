"""Benchmarks. They print figures and never fail on speed; run e.g. `python -m bench.inbox`."""

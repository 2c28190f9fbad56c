"""Every phase of `python -m bench` (the Phase protocol: bench/phase.py; the run order: bench/run.py; what each asks:
BENCHMARKS.md)."""

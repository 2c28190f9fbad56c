"""Benchmarks (`python -m bench`; BENCHMARKS.md).

    run.py, settings.py, phase.py   the command line, how much each measurement does, what a phase is given
    phases/                         the phases in run order (the four registry phases in registry.py)
    blobs.py, registries.py         the registry phases' blob data and client; the two registries as the bench runs them
    pushes/                         the push phases' tools: the measured commands and their images
    report/                         the Markdown tables and the charts
The processes (the registries, a fresh dockerd, the pipe) come from harness/, which the tests use too.
"""

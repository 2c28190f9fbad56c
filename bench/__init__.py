"""Benchmarks (`python -m bench`; BENCHMARKS.md).

    run.py, settings.py, phase.py   the command line and the phases in run order, how much each measurement does,
                                    what a phase is given
    phases/                         the phases (the four registry phases in registry.py)
    measure.py, stats.py            what a measurement records (time, CPU, peak RSS), and medians and ratios
    blobs.py, registries.py         the registry phases' blob data and client; the two registries as the bench runs them
    machine.py                      what the figures were measured on; the wait for freed pages to settle
    pushes/                         the push phases' tools: the measured commands and their images
    report/                         the Markdown tables and the charts
The processes (the registries, a fresh dockerd, the pipe) come from harness/, which the tests use too.
"""

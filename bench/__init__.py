"""Benchmarks (`python -m bench`; BENCHMARKS.md): the embedded registry beside distribution 2.8, the pipe's pushes
beside `docker push`, the export floor and `skopeo copy`, the registry's pages, and the pipe image.

    run.py, settings.py         the command line and how much each measurement does
    phase.py, phases/           the Phase protocol, Context and PushPhase; one module per phase, in run order
    blobs.py, registries.py     the registry phases' blob data and client; the two registries as the bench runs them
    pushes/                     the push phases' tools: the measured commands and their images
    report/                     the Markdown tables and the charts
    measure, stats, machine, profiling, freed_pages: what the phases share
The processes (the registries, a fresh dockerd, the pipe) come from harness/, which the tests use too.
"""

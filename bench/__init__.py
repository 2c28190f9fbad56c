"""Benchmarks (`python -m bench`): the embedded registry side by side with distribution 2.8, the pipe's pushes
against `docker push`, the export floor and `skopeo copy`, and the registry's pages.

    run.py, settings.py       the command line and how much each measurement does
    phase.py, phases/         the Phase protocol and Context; one module per phase, in run order
    blobs/, registries/       the registry phases' tools: blob data and client; the two registries as targets
    pushes/                   the push phases' tools: the measured commands, their images and archives
    report/                   the Markdown tables and the push chart
    stats, measure, cpu, memory, machine, profiling, ordering: plumbing shared by the phases

The processes the bench starts (the embedded registry, distribution, a fresh dockerd, images) come from
harness/, which the tests use too.
"""

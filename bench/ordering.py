"""The order of the measurements within a repetition, changed per repetition so none always goes first."""
from __future__ import annotations


def alternate(labels: list[str], rep: int) -> list[str]:
    """As given on even repetitions, reversed on odd ones (two registries, each first half the time)."""
    return labels if rep % 2 == 0 else labels[::-1]


def rotate(items: tuple[str, ...], rep: int) -> list[str]:
    """Rotated left by `rep` (several tools, each first in turn)."""
    k = rep % len(items)
    return list(items[k:] + items[:k])

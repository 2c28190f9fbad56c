"""Start a piece of the test infrastructure from a fixture: a failure to start fails the test (never skips)."""
from __future__ import annotations

from typing import Callable, TypeVar

import pytest

T = TypeVar("T")


def start_or_fail(what: str, start: Callable[[], T]) -> T:
    try:
        return start()
    except Exception as exc:  # noqa: BLE001 - the reason goes into the failure
        pytest.fail(f"could not start {what}: {exc}", pytrace=False)

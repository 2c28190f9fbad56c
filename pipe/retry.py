"""Retrying transient failures: a bounded number of attempts, exponential backoff, a cap on total waiting.

The failures come from the Docker daemon's push stream rather than from HTTP responses the pipe
sees itself, so urllib3's Retry does not apply; this small explicit loop does. Note that the daemon
already retries a failing layer upload a few times on its own before reporting the error.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3            # total tries, the first one included
    base_delay: float = 2.0      # seconds before the 2nd try; doubled for each later one
    max_delay: float = 30.0      # no single wait longer than this, whatever Retry-After says
    max_total_wait: float = 60.0  # all waits together

    def delay(self, failed_attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after attempt number `failed_attempt` (1-based) failed."""
        backoff = self.base_delay * (2 ** (failed_attempt - 1))
        if retry_after is not None and retry_after > 0:
            backoff = max(backoff, retry_after)
        return min(backoff, self.max_delay)


class RetriesExhausted(Exception):
    """The last failure, with how many attempts were made (1 when it was not worth retrying)."""

    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(str(last))
        self.last = last
        self.attempts = attempts


def call_with_retries(
    operation: Callable[[], T],
    policy: RetryPolicy,
    *,
    is_transient: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None] = lambda exc: None,
    on_retry: Callable[[int, float, BaseException], None] = lambda attempt, wait, exc: None,
    sleep: Callable[[float], None] = time.sleep,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Run `operation` until it succeeds, fails permanently, or the policy runs out.

    Only exceptions of `retry_on` types are considered; any other exception propagates as is.
    On final failure raises RetriesExhausted wrapping the last exception.
    """
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except retry_on as exc:
            if not is_transient(exc) or attempt >= policy.attempts:
                raise RetriesExhausted(exc, attempt) from exc
            wait = min(policy.delay(attempt, retry_after(exc)), policy.max_total_wait - waited)
            if wait <= 0:
                raise RetriesExhausted(exc, attempt) from exc
            on_retry(attempt, wait, exc)
            sleep(wait)
            waited += wait

"""Every retry the pipe makes, and its budget. One loop (`retry_loop`) makes them all; each caller names
its budget below and what happens between two attempts. There are two places, plus the daemon's own push.

1. Per request, in the registry client's transport (`client/transport.py`): a connection that fails,
   a time-out, 429 or 5xx is sent again, waiting with exponential backoff or as long as `Retry-After`
   asks. Until the registry has answered once (the login), budget `FIRST_CONTACT`: at most 3 attempts
   and 60 s of waiting (no wait over 30 s), so a wrong REGISTRY fails within seconds. Once it has
   answered, budget `REQUEST_RETRIES`: at most 6 attempts, 60 s (waits of 2, 4, 8, 16 and 30 s):
   a registry restarted in the middle of a push was away for 15-30 s here (RELIABILITY.md). A refused
   bearer token is renewed once and the request sent again; that re-send is not counted.
   A chunk (PATCH) is never re-sent by the transport: its body may have been half taken.
2. Per blob, in the transfer (`engine/chunks.py`): a chunk that fails transiently is resumed from
   the offset the registry reports (one status GET, itself a request of 1.), budget `CHUNK_RESUMES`:
   at most 5 PATCHes of one chunk and 120 s of waiting. A blob whose upload the registry forgot (the
   status answers 404) is read from the source again and sent from its first byte, in at most
   `BLOB_PASSES` passes over the source in all (`engine/transfer.py`). A blob read from a source
   registry (SOURCE_IMAGE) whose stream drops goes on from the byte it reached (`Range`), budget
   `CHUNK_RESUMES` too (`sources/registry_blobs.py`): at most 5 reads of one blob and 120 s of waiting.
3. The daemon's push (`PUSH_ENGINE=docker`, `auto` on the containerd store) is opaque to the pipe, so
   the pipe retries it as a whole (`daemon/push.py`; the login and the other tags' manifest copies
   are the registry client's requests of 1.), budget `DAEMON_RETRIES`: 3 attempts, 60 s. The daemon
   itself already retries each layer 5 times before it reports a failure.

Worst case for one request of the native engine: 6 attempts (7 with a token renewal), 60 s of
waiting (the login: 3 attempts). For one chunk: 5 PATCHes, each resume preceded by a status GET of
up to 6 attempts: 120 s + 4 x 60 s of waiting. Nothing retries around a whole native push: a failure that survives
these budgets is the pipe's answer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)


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

    def next_wait(self, failed_attempt: int, waited: float, retry_after: float | None = None, *,
                  cut: bool = False) -> float | None:
        """How long to wait before the next attempt, or None when the budget is spent. A wait that would
        overrun `max_total_wait` ends the retries, or with `cut` is cut to what is left of it."""
        if failed_attempt >= self.attempts:
            return None
        wait = self.delay(failed_attempt, retry_after)
        if cut:
            wait = min(wait, self.max_total_wait - waited)
            return wait if wait > 0 else None
        return None if waited + wait > self.max_total_wait else wait


FIRST_CONTACT = RetryPolicy()
REQUEST_RETRIES = RetryPolicy(attempts=6)
CHUNK_RESUMES = RetryPolicy(attempts=5, max_total_wait=120.0)
BLOB_PASSES = 3
DAEMON_RETRIES = RetryPolicy()


@dataclass
class Attempts:
    """What one budget has been spent on: the attempts that failed and the seconds waited. `retry_loop`
    starts a fresh one per call; a caller whose calls share a budget keeps its own (a blob's stream,
    whose every read draws on the blob's budget)."""

    failed: int = 0
    waited: float = 0.0


def _no_wait(exc: BaseException) -> float | None:
    return None


def _nothing(*_: object) -> None:
    return None


def retry_loop(
    attempt: Callable[[], T],
    policy: RetryPolicy | Callable[[], RetryPolicy],
    *,
    retry_on: tuple[type[E], ...],
    transient: Callable[[E], bool] = lambda exc: True,
    retry_after: Callable[[E], float | None] = _no_wait,
    waiting: Callable[[E, float, int], None] = _nothing,
    resume: Callable[[E], None] = _nothing,
    exhausted: Callable[[E, int], None] = _nothing,
    sleep: Callable[[float], None] = time.sleep,
    spent: Attempts | None = None,
    cut: bool = False,
) -> T:
    """The one retry loop: call `attempt` until it returns, fails for good, or `policy` is spent.

    A failure of a `retry_on` type that is `transient` is told to `waiting` (with the wait and the
    number of the failed attempt, 1-based), slept off, then handed to `resume` (what to do before the
    next attempt: ask where an upload stands; it may raise); any other exception propagates as is.
    `policy` may be a function, asked at each failure (the transport's grows once the registry has
    answered). When the failure is not transient or the policy is spent, `exhausted` is told the last
    failure and the attempts made before it propagates; it may raise another exception in its place.
    `cut`: see `next_wait`.
    """
    spent = spent if spent is not None else Attempts()
    while True:
        try:
            return attempt()
        except retry_on as exc:
            spent.failed += 1
            budget = policy() if callable(policy) else policy
            wait = budget.next_wait(spent.failed, spent.waited, retry_after(exc), cut=cut) if transient(exc) else None
            if wait is None:
                exhausted(exc, spent.failed)
                raise
            waiting(exc, wait, spent.failed)
            sleep(wait)
            spent.waited += wait
            resume(exc)


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
    retry_after: Callable[[BaseException], float | None] = _no_wait,
    on_retry: Callable[[int, float, BaseException], None] = lambda attempt, wait, exc: None,
    sleep: Callable[[float], None] = time.sleep,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """`retry_loop` for the daemon's push: on final failure raises RetriesExhausted wrapping the last
    exception. Its last wait is cut to what is left of the budget (with DAEMON_RETRIES, two waits of
    at most 30 s in 60 s, the two rules of `next_wait` never differ)."""
    def exhausted(exc: BaseException, attempts: int) -> None:
        raise RetriesExhausted(exc, attempts) from exc

    return retry_loop(operation, policy, retry_on=retry_on, transient=is_transient, retry_after=retry_after,
                    waiting=lambda exc, wait, attempt: on_retry(attempt, wait, exc), exhausted=exhausted,
                    sleep=sleep, cut=True)

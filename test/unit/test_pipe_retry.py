"""The retry policy (pipe/retry.py)."""


import pytest

from pipe.retry import DAEMON_RETRIES, RetriesExhausted, RetryPolicy, call_with_retries


class Flaky(Exception):
    def __init__(self, transient=True, retry_after=None):
        super().__init__("flaky")
        self.transient = transient
        self.retry_after = retry_after


def run(operation, policy=DAEMON_RETRIES, **kwargs):
    sleeps = []
    retries = []
    try:
        result = call_with_retries(
            operation, policy,
            is_transient=lambda e: getattr(e, "transient", False),
            retry_after=lambda e: getattr(e, "retry_after", None),
            on_retry=lambda attempt, wait, exc: retries.append((attempt, wait)),
            sleep=sleeps.append, **kwargs)
        return result, sleeps, retries
    except RetriesExhausted as exc:
        return exc, sleeps, retries


def failing(errors):
    errors = list(errors)

    def operation():
        if errors:
            raise errors.pop(0)
        return "ok"
    return operation


def test_success_first_time():
    assert run(lambda: 42) == (42, [], [])


def test_transient_failures_back_off_exponentially_then_succeed():
    result, sleeps, retries = run(failing([Flaky(), Flaky()]))
    assert result == "ok"
    assert sleeps == [2.0, 4.0]
    assert retries == [(1, 2.0), (2, 4.0)]


def test_gives_up_after_the_attempts():
    exc, sleeps, _ = run(failing([Flaky()] * 5))
    assert isinstance(exc, RetriesExhausted) and exc.attempts == 3
    assert isinstance(exc.last, Flaky)
    assert len(sleeps) == 2


def test_permanent_failure_is_not_retried():
    exc, sleeps, _ = run(failing([Flaky(transient=False)]))
    assert exc.attempts == 1 and sleeps == []


def test_retry_after_is_honoured_but_capped():
    _, sleeps, _ = run(failing([Flaky(retry_after=7), Flaky(retry_after=500)]))
    assert sleeps == [7.0, 30.0]


def test_total_wait_is_capped():
    policy = RetryPolicy(attempts=10, base_delay=10, max_delay=100, max_total_wait=25)
    exc, sleeps, _ = run(failing([Flaky()] * 10), policy)
    assert sleeps == [10, 15]  # 10, then only what is left of the 25 s budget
    assert sum(sleeps) <= 25 and exc.attempts == 3


def test_other_exception_types_propagate_untouched():
    with pytest.raises(KeyError):
        call_with_retries(failing([KeyError("x")]), RetryPolicy(), is_transient=lambda e: True,
                          sleep=lambda s: None, retry_on=(Flaky,))


def test_delay_formula():
    policy = RetryPolicy(base_delay=1, max_delay=5)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]

"""The retry policy (pipe/retry.py)."""


import pytest

from pipe.retry import DAEMON_RETRIES, Attempts, RetriesExhausted, RetryPolicy, call_with_retries, retry_loop


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


def loop(operation, policy=DAEMON_RETRIES, **kwargs):
    """retry_loop with its steps recorded in order: ("wait", seconds, attempt), ("resume",), ("exhausted", attempts)."""
    steps = []
    kwargs.setdefault("transient", lambda e: getattr(e, "transient", False))
    result = retry_loop(operation, policy, retry_on=(Flaky,), sleep=lambda s: steps.append(("sleep", s)),
                        waiting=lambda e, wait, attempt: steps.append(("wait", wait, attempt)),
                        resume=lambda e: steps.append(("resume",)),
                        exhausted=lambda e, attempts: steps.append(("exhausted", attempts)), **kwargs)
    return result, steps


def test_the_loop_waits_then_resumes_before_each_new_attempt():
    result, steps = loop(failing([Flaky(), Flaky()]))
    assert result == "ok"
    assert steps == [("wait", 2.0, 1), ("sleep", 2.0), ("resume",), ("wait", 4.0, 2), ("sleep", 4.0), ("resume",)]


def test_the_last_failure_is_told_and_raised_as_it_is():
    last = Flaky()
    steps = []
    with pytest.raises(Flaky) as raised:
        retry_loop(failing([Flaky(), Flaky(), last]), DAEMON_RETRIES, retry_on=(Flaky,), sleep=lambda s: None,
                   exhausted=lambda e, attempts: steps.append((e, attempts)))
    assert raised.value is last and steps == [(last, 3)]


def test_a_failure_while_resuming_ends_the_loop_untouched():
    def resume(exc):
        raise KeyError("the upload is gone")
    with pytest.raises(KeyError):
        retry_loop(failing([Flaky(), Flaky()]), DAEMON_RETRIES, retry_on=(Flaky,), sleep=lambda s: None,
                   resume=resume)


def test_a_wait_that_would_overrun_the_budget_ends_the_loop_unless_cut():
    policy = RetryPolicy(attempts=10, base_delay=10, max_delay=100, max_total_wait=25)
    with pytest.raises(Flaky):
        loop(failing([Flaky()] * 10), policy)
    _, steps = loop(failing([Flaky()] * 2), policy, cut=True)
    assert [step[1] for step in steps if step[0] == "sleep"] == [10, 15]


def test_calls_that_share_an_account_share_one_budget():
    spent = Attempts()
    first, _ = loop(failing([Flaky(), Flaky()]), spent=spent)
    assert first == "ok" and (spent.failed, spent.waited) == (2, 6.0)
    with pytest.raises(Flaky):  # the third failure is the third of the budget's 3 attempts
        loop(failing([Flaky()]), spent=spent)
    assert spent.failed == 3


def test_a_policy_function_is_asked_at_each_failure():
    policies = iter([RetryPolicy(attempts=2), RetryPolicy(attempts=6)])
    result, steps = loop(failing([Flaky(), Flaky()]), lambda: next(policies))
    assert result == "ok" and [step[2] for step in steps if step[0] == "wait"] == [1, 2]

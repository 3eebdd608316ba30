"""The one retry engine (plait/_retry.py) that nodes, tools and the HTTP backend share."""

import sqlite3
import time

import anyio
import pytest

from plait import RetryPolicy
from plait._retry import RetryDeadlineError, retry, retry_blocking
from plait.durable import _sqlite
from plait.executors import _openai, _tool_runner
from plait.orchestrator import _node, _runtime

pytestmark = pytest.mark.anyio


class Flaky(Exception):
    pass


def failing(times: int, error: type[Exception] = Flaky, **attrs):
    """An attempt function that fails ``times`` times, then returns the attempt number; records each call."""
    calls: list[int] = []

    async def attempt(number: int) -> int:
        calls.append(number)
        if len(calls) <= times:
            exc = error(f"failure {number}")
            for name, value in attrs.items():
                setattr(exc, name, value)
            raise exc
        return number

    return attempt, calls


async def test_retries_until_an_attempt_succeeds_waiting_the_policys_delays():
    attempt, calls = failing(3)
    waits = []
    policy = RetryPolicy(attempts=4, backoff=0.001, multiplier=3.0, max_backoff=0.005, jitter=0.0)
    result = await retry(policy, attempt, on_retry=lambda exc, n, wait: waits.append((str(exc), n, wait)))
    assert result == 4 and calls == [1, 2, 3, 4]
    assert waits == [("failure 1", 1, 0.001), ("failure 2", 2, pytest.approx(0.003)), ("failure 3", 3, 0.005)]


async def test_the_last_failure_propagates_once_attempts_are_spent():
    attempt, calls = failing(10)
    with pytest.raises(Flaky, match="failure 3"):
        await retry(RetryPolicy(attempts=3, backoff=0.0), attempt)
    assert calls == [1, 2, 3]


async def test_no_policy_means_one_attempt():
    attempt, calls = failing(1)
    with pytest.raises(Flaky, match="failure 1"):
        await retry(None, attempt)
    assert calls == [1]


async def test_only_errors_in_retry_on_are_retried_and_retryable_can_refuse_more():
    attempt, calls = failing(1, ValueError)
    with pytest.raises(ValueError):
        await retry(RetryPolicy(attempts=5, backoff=0.0, retry_on=(Flaky,)), attempt)
    assert calls == [1]
    attempt, calls = failing(1)
    with pytest.raises(Flaky):
        await retry(RetryPolicy(attempts=5, backoff=0.0), attempt, retryable=lambda exc: "failure 2" in str(exc))
    assert calls == [1]


async def test_a_failure_that_says_when_is_waited_for_that_long():
    attempt, _ = failing(1, retry_after=0.002)
    waits = []
    assert await retry(RetryPolicy(backoff=5.0, jitter=0.0), attempt,
                       on_retry=lambda exc, n, wait: waits.append(wait)) == 2
    assert waits == [0.002]


async def test_a_wait_past_the_deadline_gives_up_at_once_instead_of_sleeping():
    attempt, calls = failing(5)
    deadline = anyio.current_time() + 60
    with anyio.fail_after(30):  # ended, not hung: the 100 s backoff is never slept
        with pytest.raises(RetryDeadlineError) as info:
            await retry(RetryPolicy(attempts=5, backoff=100.0, max_backoff=100.0, jitter=0.0), attempt, deadline=deadline)
    assert calls == [1] and info.value.attempts == 1 and info.value.wait == 100.0
    assert isinstance(info.value.error, Flaky) and info.value.__cause__ is info.value.error


def test_delay_is_capped_and_jittered_within_bounds():
    policy = RetryPolicy(backoff=1.0, multiplier=10.0, max_backoff=4.0, jitter=0.5)
    for retry_number in range(1, 6):
        base = min(10.0 ** (retry_number - 1), 4.0)
        assert base * 0.5 <= policy.delay(retry_number) <= base * 1.5


def test_nodes_tools_http_and_sqlite_all_use_the_one_engine():
    """One mechanism: every caller imports the engine (and RetryPolicy is one class).

    What each one does with it is tested with its own suite (tests/orchestrator, tests/executors/test_tools*.py,
    tests/executors/test_hostile_server.py, and tests/durable/test_store_files.py for a contended WAL switch).
    """
    assert _sqlite.retry_blocking is retry_blocking and _sqlite._CONTENDED_SWITCH.retry_on == (sqlite3.OperationalError,)
    assert _node.RetryPolicy is RetryPolicy
    for module in (_runtime, _tool_runner, _openai):
        assert module.retry is retry
        assert "anyio.sleep(" not in open(module.__file__, encoding="utf-8").read()


def test_the_blocking_driver_follows_the_same_policy_and_deadline():
    calls = []

    def attempt(number):
        calls.append(number)
        if number < 3:
            raise Flaky(f"failure {number}")
        return number

    assert retry_blocking(RetryPolicy(attempts=3, backoff=0.001, jitter=0.0), attempt) == 3 and calls == [1, 2, 3]
    calls.clear()
    with pytest.raises(Flaky, match="failure 1"):  # refused by the predicate: no second attempt
        retry_blocking(RetryPolicy(attempts=3, backoff=0.0), attempt, retryable=lambda exc: False)
    calls.clear()
    with pytest.raises(RetryDeadlineError) as info:
        retry_blocking(RetryPolicy(attempts=3, backoff=50.0, max_backoff=50.0, jitter=0.0), attempt,
                       deadline=time.monotonic() + 10)
    assert calls == [1] and info.value.wait == 50.0

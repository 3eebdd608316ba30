"""The one retry engine: nodes, tools and the HTTP backend all retry through :func:`retry`.

It sits at the top of the package, beside ``errors.py``, so that
``executors`` and ``orchestrator`` both import it without going up a layer.
Each caller keeps what is its own (the events it emits, the records it
keeps, how it reports the final failure); the engine owns the policy: which
failures are tried again, how many times, how long to wait between tries,
and whether the wait still fits a total deadline.

A failure may say when to try again (an HTTP ``Retry-After``): an exception
with a float ``retry_after`` attribute is waited for that long instead of the
backoff (the caller caps it). Waiting for an attempt abandoned by a timeout is
the attempt's own business (a sync node or tool runs on a ``Lane`` whose next
call waits for the previous thread), so the engine never overlaps attempts.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from plait.errors import ConfigError

__all__ = ["RetryPolicy", "RetryDeadlineError", "retry", "retry_blocking"]

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How a failing node (or tool) is retried.

    ``attempts`` counts the first try (``attempts=3`` means up to two retries).
    The delay before retry *k* (1-based) is ``backoff * multiplier**(k-1)``,
    capped at ``max_backoff``, then scaled by a random factor in
    ``[1 - jitter, 1 + jitter]`` so that retrying branches do not stampede.
    Only exceptions that are instances of ``retry_on`` are retried.
    """

    attempts: int = 3
    backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 10.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"RetryPolicy.jitter must be within [0, 1], got {self.jitter}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ConfigError("RetryPolicy backoff values must be >= 0")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        base = min(self.backoff * self.multiplier ** (retry - 1), self.max_backoff)
        factor = 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(base * factor, 0.0)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether failed attempt number ``attempt`` (1-based) is followed by another."""
        return attempt < self.attempts and isinstance(error, self.retry_on)


class RetryDeadlineError(Exception):
    """:func:`retry` gave up because waiting ``wait`` seconds more would pass its deadline.

    ``error`` is the last failure and ``attempts`` how many attempts ran.
    """

    def __init__(self, error: BaseException, attempts: int, wait: float):
        super().__init__(f"{error}; waiting {wait:g}s more would pass the deadline")
        self.error, self.attempts, self.wait = error, attempts, wait


async def retry(
    policy: RetryPolicy | None,
    attempt: Callable[[int], Awaitable[_T]],
    *,
    on_retry: Callable[[BaseException, int, float], Any] | None = None,
    retryable: Callable[[BaseException], bool] | None = None,
    deadline: float | None = None,
) -> _T:
    """Await ``attempt(1)``, ``attempt(2)``, ... until one returns, as ``policy`` allows.

    A failure the policy does not retry (or that ``retryable`` refuses:
    control flow the caller raises through, an error only some messages of
    which are transient) propagates unchanged, as does the last one. Before
    each retry ``on_retry(error, failed_attempt, delay)`` is called, then the
    engine sleeps ``delay`` seconds. With ``deadline`` (an
    ``anyio.current_time()`` value), a wait that would end past it raises
    :class:`RetryDeadlineError` instead of sleeping. ``policy=None`` means one
    attempt.
    """
    number = 0
    while True:
        number += 1
        try:
            return await attempt(number)
        except Exception as exc:
            wait = _next_wait(policy, exc, number, retryable, deadline, anyio.current_time)
            if wait is None:
                raise
            if on_retry is not None:
                on_retry(exc, number, wait)
        await anyio.sleep(wait)


def retry_blocking(
    policy: RetryPolicy,
    attempt: Callable[[int], _T],
    *,
    retryable: Callable[[BaseException], bool] | None = None,
    deadline: float | None = None,
) -> _T:
    """:func:`retry` for blocking code outside the event loop (``deadline``: a ``time.monotonic()`` value)."""
    number = 0
    while True:
        number += 1
        try:
            return attempt(number)
        except Exception as exc:
            wait = _next_wait(policy, exc, number, retryable, deadline, time.monotonic)
            if wait is None:
                raise
        time.sleep(wait)


def _next_wait(policy: RetryPolicy | None, error: Exception, number: int,
               retryable: Callable[[BaseException], bool] | None, deadline: float | None,
               clock: Callable[[], float]) -> float | None:
    """The wait before the attempt after failed attempt ``number``; None: give up (RetryDeadlineError: past it)."""
    if policy is None or not policy.should_retry(error, number) or (retryable is not None and not retryable(error)):
        return None
    wait = _wait(policy, error, number)
    if deadline is not None and clock() + wait > deadline:
        raise RetryDeadlineError(error, number, wait) from error
    return wait


def _wait(policy: RetryPolicy, error: BaseException, number: int) -> float:
    """The server's word (``error.retry_after``) when it gave one, else the policy's backoff."""
    asked = getattr(error, "retry_after", None)
    if isinstance(asked, (int, float)) and not isinstance(asked, bool) and asked >= 0:
        return float(asked)
    return policy.delay(number)

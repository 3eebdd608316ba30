"""The solver's clock: one deadline and the caller's stop flag, consulted wherever the solver does work.

A time limit only holds if it is checked inside every loop that can run
long on hostile input. python-constraint calls a variable's constraints in
order and moves on at the first that fails, so a guard consulted once per
assignment is not enough: an assignment that every constraint rejects, a
forward check over a 100,000-value domain, or 20,000 constraints compiled
one by one would never reach it. So the deadline is checked at each
assignment (a guard that comes first), at each evaluation of a constraint's
predicate, in every propagator call and preprocessing step, between
constraints while compiling, and between the searches of a conflict
analysis. Each step between two checks is small because sizes are bounded
(see :mod:`plait.solvers._limits`), so a search stops within milliseconds of
its deadline and leaves nothing running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Deadline", "Stopped"]


class Stopped(Exception):
    """The deadline passed or the caller set ``stop``: unwinds the solver from wherever it was."""


class Deadline:
    """When work must end (``None``: no limit) and a ``stop`` event that ends it early."""

    __slots__ = ("at", "stop", "seconds")

    def __init__(self, seconds: float | None = None, stop: threading.Event | None = None,
                 *, at: float | None = None):
        self.seconds = seconds
        self.at = at if at is not None else (None if seconds is None else time.monotonic() + seconds)
        self.stop = stop

    @property
    def unlimited(self) -> bool:
        return self.at is None and self.stop is None

    def expired(self) -> bool:
        return (self.at is not None and time.monotonic() > self.at) or (self.stop is not None and self.stop.is_set())

    def check(self) -> None:
        """Raise :class:`Stopped` once the deadline passed or ``stop`` is set."""
        if (self.at is not None and time.monotonic() > self.at) or (self.stop is not None and self.stop.is_set()):
            raise Stopped

    def within(self, seconds: float | None) -> Deadline:
        """A deadline at most ``seconds`` from now, never later than this one, sharing its ``stop``."""
        if seconds is None:
            return self
        at = time.monotonic() + seconds
        return Deadline(seconds, self.stop, at=at if self.at is None else min(at, self.at))

    def timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` checking this deadline before each call (a constraint predicate: the innermost loop)."""
        if self.unlimited:
            return fn
        check = self.check

        def checked(*values: Any) -> Any:
            check()
            return fn(*values)

        return checked

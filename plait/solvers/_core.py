"""Minimal conflict sets: which constraints (or which pinned values) cannot hold together.

A deletion filter: start from a conflicting set, try dropping each member,
and keep it dropped whenever the rest still conflicts. The result is minimal
(removing any one member makes it consistent), not necessarily the smallest.
Each test is one search over constraints compiled once (a timed-out search
counts as "no conflict shown", so the set only shrinks on proof). All tests
share one :class:`Deadline`: when it passes, the filter stops and returns the
set it has, which still conflicts but may not be minimal. So a conflict
analysis of any size ends within its time limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from plait.solvers._bridge import search
from plait.solvers._compile import Check, compile_all
from plait.solvers._deadline import Deadline
from plait.solvers._model import CSP

__all__ = ["deletion_filter", "conflicting_constraints", "conflicting_values"]

T = TypeVar("T")


def deletion_filter(items: Sequence[T], conflicts: Callable[[list[T]], bool],
                    deadline: Deadline | None = None) -> list[T]:
    """A sub-list of ``items`` for which ``conflicts`` still holds (``items`` must conflict): minimal unless
    ``deadline`` passed first."""
    core = list(items)
    i = 0
    while i < len(core) and not (deadline is not None and deadline.expired()):
        trial = core[:i] + core[i + 1:]
        if conflicts(trial):
            core = trial
        else:
            i += 1
    return core


def conflicting_constraints(csp: CSP, deadline: Deadline, *, checks: list[Check] | None = None,
                            each: float | None = 2.0) -> list[int]:
    """Indices of a set of constraints that together admit no solution; each search gets at most ``each``
    seconds. Raises :class:`~plait.solvers._deadline.Stopped` if ``deadline`` passes while compiling."""
    checks = compile_all(csp, deadline) if checks is None else checks

    def unsat(indices: list[int]) -> bool:
        return search(csp, [checks[i] for i in indices], deadline.within(each)).status == "unsat"

    return deletion_filter(list(range(len(checks))), unsat, deadline)


def conflicting_values(csp: CSP, pinned: Mapping[str, Any], deadline: Deadline, *, checks: list[Check],
                       each: float | None = 2.0) -> list[str]:
    """A set of pinned variables whose values cannot all be extended to a solution."""

    def unsat(names: list[str]) -> bool:
        fixed = {n: pinned[n] for n in names}
        return search(csp, checks, deadline.within(each), fixed=fixed).status == "unsat"

    return deletion_filter(list(pinned), unsat, deadline)

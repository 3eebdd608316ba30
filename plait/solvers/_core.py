"""Minimal conflict sets: which constraints (or which pinned values) cannot hold together.

A deletion filter: start from a conflicting set, try dropping each member,
and keep it dropped whenever the rest still conflicts. The result is minimal
(removing any one member makes it consistent), not necessarily the smallest.
Each test is one solver call (a stopped or timed-out call counts as "no
conflict shown", so the set only shrinks on proof), so this is for small sets: a model's
constraints when it reports "unsat", a model's proposals when they conflict.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from plait.solvers._bridge import solve
from plait.solvers._model import CSP

__all__ = ["deletion_filter", "conflicting_constraints", "conflicting_values"]

T = TypeVar("T")


def deletion_filter(items: Sequence[T], conflicts: Callable[[list[T]], bool]) -> list[T]:
    """A minimal sub-list of ``items`` for which ``conflicts`` still holds (``items`` must conflict)."""
    core = list(items)
    i = 0
    while i < len(core):
        trial = core[:i] + core[i + 1:]
        if conflicts(trial):
            core = trial
        else:
            i += 1
    return core


def conflicting_constraints(csp: CSP, *, timeout: float = 2.0, stop: threading.Event | None = None) -> list[int]:
    """Indices of a minimal set of constraints that together admit no solution."""

    def unsat(indices: list[int]) -> bool:
        sub = csp.model_copy(update={"constraints": [csp.constraints[i] for i in indices]})
        return solve(sub, timeout=timeout, stop=stop).status == "unsat"

    return deletion_filter(list(range(len(csp.constraints))), unsat)


def conflicting_values(csp: CSP, pinned: Mapping[str, Any], *, timeout: float = 2.0,
                       stop: threading.Event | None = None) -> list[str]:
    """A minimal set of pinned variables whose values cannot all be extended to a solution."""

    def unsat(names: list[str]) -> bool:
        return solve(csp, fixed={n: pinned[n] for n in names}, timeout=timeout, stop=stop).status == "unsat"

    return deletion_filter(list(pinned), unsat)

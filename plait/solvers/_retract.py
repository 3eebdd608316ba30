"""Propose and retract: the model proposes values, the solver checks them and retracts exactly the conflicting ones.

This is the retraction primitive autoregressive decoding lacks. A conflict is
found in three steps, each reporting the smallest set of proposals to blame:

1. a proposed value outside its variable's domain: that variable;
2. violated constraints whose variables are all proposed: for an
   all-different, the variables sharing a value; otherwise the constraint's
   variables;
3. no violation, yet the proposals cannot be completed to a solution: a
   minimal set of proposals that cannot hold together (deletion filter).

``timeout`` bounds the whole analysis (compiling, the search, the deletion
filter's searches), not each search in it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from plait.solvers._bridge import search
from plait.solvers._compile import compile_all
from plait.solvers._core import conflicting_values
from plait.solvers._deadline import Deadline, Stopped
from plait.solvers._model import CSP, AllDifferent

__all__ = ["Conflict", "find_conflict"]


@dataclasses.dataclass(frozen=True)
class Conflict:
    """Proposals to retract: the variables, the constraints they break, and why."""

    variables: tuple[str, ...]
    constraints: tuple[int, ...]
    reason: str


def find_conflict(csp: CSP, proposals: Mapping[str, Any], *, timeout: float = 5.0,
                  stop: threading.Event | None = None) -> Conflict | None:
    """The proposals that conflict with ``csp`` (None when they extend to a solution, or when no conflict was
    shown within ``timeout`` seconds, the bound of the whole analysis).

    Raises :class:`~plait.errors.ConstraintSyntaxError` for an invalid model.
    """
    deadline = Deadline(timeout, stop)
    try:
        return _find(csp, proposals, deadline)
    except Stopped:
        return None


def _find(csp: CSP, proposals: Mapping[str, Any], deadline: Deadline) -> Conflict | None:
    domains = csp.domains
    unknown = sorted(name for name in proposals if name not in domains)
    if unknown:
        return Conflict(tuple(unknown), (), f"unknown variable(s) {', '.join(unknown)}")
    outside = sorted(name for name, value in proposals.items() if not _in_domain(value, domains[name]))
    if outside:
        shown = ", ".join(f"{n}={proposals[n]!r}" for n in outside)
        return Conflict(tuple(outside), (), f"value(s) outside the domain: {shown}")
    blamed: set[str] = set()
    broken: list[int] = []
    checks = compile_all(csp, deadline)
    for check in checks:
        deadline.check()
        if not all(v in proposals for v in check.variables) or check.holds(proposals):
            continue
        broken.append(check.index)
        blamed |= _involved(csp, check.index, check.variables, proposals)
    if broken:
        return Conflict(tuple(sorted(blamed)), tuple(broken), "violated constraint(s)")
    if search(csp, checks, deadline, fixed=proposals).status != "unsat":
        return None
    core = conflicting_values(csp, proposals, deadline, checks=checks)
    return Conflict(tuple(sorted(core)), (), "these values together leave no solution for the other variables")


def _in_domain(value: Any, domain: list[Any]) -> bool:
    """Membership without Python's ``True == 1`` and ``3.0 == 3`` coincidences."""
    return any(type(d) is type(value) and d == value for d in domain)


def _involved(csp: CSP, index: int, names: tuple[str, ...], values: Mapping[str, Any]) -> set[str]:
    """The variables a violation is down to: for all-different only those that share a value."""
    if isinstance(csp.constraints[index], AllDifferent):
        return {n for n in names if sum(values[m] == values[n] for m in names) > 1}
    return set(names)

"""A stronger all-different propagator for python-constraint's search.

python-constraint's own ``AllDifferentConstraint`` does forward checking: an
assigned value is hidden from the other variables. This one also

* fails early when the open variables have fewer distinct values left than
  there are open variables (pigeonhole);
* when the variables must use every value of their joint domain (a
  permutation, as in Sudoku units or N-Queens columns), finds values that fit
  only one open variable ("hidden singles") and narrows that variable to it,
  or fails when a needed value fits nowhere.

Narrowed domains are restored by the solver's own push/pop of domain states,
so the search stays complete. On hard Sudokus this cuts the search by an
order of magnitude. It checks the solve's deadline in preprocessing and for
each open variable it scans (a domain holds up to 100,000 values).
"""

from __future__ import annotations

import constraint as pc

from plait.solvers._deadline import Deadline

__all__ = ["AllDifferentPropagator"]


class AllDifferentPropagator(pc.Constraint):
    """All-different with forward checking, pigeonhole failure and hidden singles."""

    def __init__(self, deadline: Deadline | None = None) -> None:
        self._values: frozenset = frozenset()  # every domain's values, set by preProcess
        self._permutation = False
        self._deadline = deadline or Deadline()

    def preProcess(self, variables, domains, constraints, vconstraints) -> None:  # noqa: N802 (library API)
        union: set = set()
        for v in variables:
            self._deadline.check()
            union.update(domains[v])
        self._values = frozenset(union)
        self._permutation = len(union) == len(variables)

    def __call__(self, variables, domains, assignments, forwardcheck=False, _unassigned=pc.Unassigned) -> bool:
        check = self._deadline.check
        check()
        seen: set = set()
        open_vars = []
        for v in variables:
            if v in assignments:
                value = assignments[v]
                if value in seen:
                    return False
                seen.add(value)
            else:
                open_vars.append(v)
        if not forwardcheck or not open_vars:
            return True
        count: dict = {}  # value -> how many open variables can still take it
        last: dict = {}  # value -> one open variable that can take it
        for v in open_vars:
            check()
            domain = domains[v]
            for value in [x for x in domain if x in seen]:
                domain.hideValue(value)
            if not domain:
                return False
            for value in domain:
                count[value] = count.get(value, 0) + 1
                last[value] = v
        if len(count) < len(open_vars):  # pigeonhole
            return False
        if not self._permutation:
            return True
        if len(count) < len(self._values) - len(seen):  # a value every solution needs fits nowhere
            return False
        for value, places in count.items():
            if places == 1:  # a hidden single: only one variable can take this value
                domain = domains[last[value]]
                if value not in domain:  # that variable was already narrowed to another hidden single
                    return False
                for other in [x for x in domain if x != value]:
                    domain.hideValue(other)
        return True

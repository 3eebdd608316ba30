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
order of magnitude.
"""

from __future__ import annotations

import constraint as pc

__all__ = ["AllDifferentPropagator"]


class AllDifferentPropagator(pc.Constraint):
    """All-different with forward checking, pigeonhole failure and hidden singles."""

    def __init__(self) -> None:
        self._values: frozenset | None = None
        self._permutation = False

    def preProcess(self, variables, domains, constraints, vconstraints) -> None:  # noqa: N802 (library API)
        union: set = set()
        for v in variables:
            union.update(domains[v])
        self._values = frozenset(union)
        self._permutation = len(union) == len(variables)

    def __call__(self, variables, domains, assignments, forwardcheck=False, _unassigned=pc.Unassigned) -> bool:
        seen = set()
        open_vars = []
        for v in variables:
            value = assignments.get(v, _unassigned)
            if value is _unassigned:
                open_vars.append(v)
            elif value in seen:
                return False
            else:
                seen.add(value)
        if not forwardcheck or not open_vars:
            return True
        places: dict = {}
        for v in open_vars:
            domain = domains[v]
            for value in [x for x in domain if x in seen]:
                domain.hideValue(value)
            if not domain:
                return False
            for value in domain:
                places.setdefault(value, []).append(v)
        if len(places) < len(open_vars):
            return False
        if self._permutation:
            return self._hidden_singles(domains, places, seen)
        return True

    def _hidden_singles(self, domains, places: dict, seen: set) -> bool:
        for value in self._values:
            if value in seen:
                continue
            where = places.get(value)
            if not where:
                return False
            if len(where) == 1:
                domain = domains[where[0]]
                if value not in domain:  # another hidden single already claimed this variable
                    return False
                for other in list(domain):
                    if other != value:
                        domain.hideValue(other)
        return True

"""Compile each CSP constraint into a check: its variables, a predicate, and a python-constraint object.

The predicate takes the variables' values positionally (python-constraint's
calling convention). Where python-constraint has a native propagator
(all-different, unweighted sums over non-negative integers) the bridge uses
it; everything else becomes a ``FunctionConstraint`` over the predicate.
Every python-constraint object checks the solve's :class:`Deadline` on each
call (predicates on each evaluation, native propagators on each call and in
their preprocessing), and compiling checks it between constraints.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Mapping
from typing import Any

import constraint as pc

from plait.errors import ConstraintSyntaxError
from plait.solvers._deadline import Deadline
from plait.solvers._expr import parse_expr
from plait.solvers._propagate import AllDifferentPropagator
from plait.solvers._model import CSP, AllDifferent, AnyOf, Compare, Expression, Implies, Sum, Table

__all__ = ["Check", "Scope", "compile_constraint", "compile_checks", "compile_all"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


@dataclasses.dataclass(frozen=True)
class Check:
    """One compiled constraint."""

    index: int
    variables: tuple[str, ...]
    predicate: Callable[..., Any]
    native: Callable[[Deadline], pc.Constraint] | None = None

    def holds(self, assignment: Mapping[str, Any]) -> bool:
        return bool(self.predicate(*(assignment[v] for v in self.variables)))

    def to_python_constraint(self, deadline: Deadline) -> pc.Constraint:
        if self.native is not None:
            return self.native(deadline)
        return pc.FunctionConstraint(deadline.timed(self.predicate))


class Scope:
    """What compiling needs of the variables, worked out once per CSP (not once per constraint)."""

    def __init__(self, csp: CSP):
        self.kinds = csp.kinds
        self._variables = {v.name: v for v in csp.variables}
        self._lowest: dict[str, Any] = {}

    def lowest(self, name: str) -> Any:
        if name not in self._lowest:
            self._lowest[name] = self._variables[name].lowest
        return self._lowest[name]


def compile_checks(csp: CSP, deadline: Deadline | None = None) -> tuple[list[Check], list[str]]:
    """Every constraint compiled, and one line per constraint that is not valid; raises
    :class:`~plait.solvers._deadline.Stopped` when ``deadline`` passes first."""
    checks, problems = [], []
    scope = Scope(csp)
    for i in range(len(csp.constraints)):
        if deadline is not None:
            deadline.check()
        try:
            checks.append(compile_constraint(csp, i, scope))
        except ConstraintSyntaxError as exc:
            problems.append(f"constraint #{i} ({csp.constraints[i].kind}): {exc}")
    return checks, problems


def compile_all(csp: CSP, deadline: Deadline | None = None) -> list[Check]:
    """Compile every constraint; raise :class:`ConstraintSyntaxError` listing all problems at once."""
    checks, problems = compile_checks(csp, deadline)
    if problems:
        raise ConstraintSyntaxError("invalid constraints:\n" + "\n".join(f"  - {p}" for p in problems))
    return checks


def compile_constraint(csp: CSP, index: int, scope: Scope | None = None) -> Check:
    c = csp.constraints[index]
    scope = scope or Scope(csp)
    kinds = scope.kinds
    if isinstance(c, AllDifferent):
        names = _known(c.variables, kinds, "all_different")
        return Check(index, names, lambda *vals: len(set(vals)) == len(vals), AllDifferentPropagator)
    if isinstance(c, Compare):
        for side in (c.left, c.right):
            parse_expr(side, kinds, boolean=False)
        expr = parse_expr(c.text, kinds)
        return Check(index, expr.variables, expr)
    if isinstance(c, Expression):
        expr = parse_expr(c.expression, kinds)
        return Check(index, expr.variables, expr)
    if isinstance(c, Sum):
        return _sum(scope, index, c)
    if isinstance(c, Table):
        names = _known(c.variables, kinds, "table")
        rows = frozenset(tuple(r) for r in c.rows)
        if c.forbidden:
            return Check(index, names, lambda *vals: vals not in rows)
        return Check(index, names, lambda *vals: vals in rows)
    if isinstance(c, Implies):
        cond, then = parse_expr(c.if_, kinds), parse_expr(c.then, kinds)
        return _combine(index, [cond, then], lambda a, b: (not a) or b)
    if isinstance(c, AnyOf):
        exprs = [parse_expr(text, kinds) for text in c.conditions]
        return _combine(index, exprs, lambda *truths: any(truths))
    raise ConstraintSyntaxError(f"unknown constraint kind {type(c).__name__}")


def _known(names: list[str], kinds: dict[str, str], where: str) -> tuple[str, ...]:
    unknown = [n for n in names if n not in kinds]
    if unknown:
        raise ConstraintSyntaxError(
            f"{where} uses unknown variable(s) {', '.join(map(repr, unknown))}; declared: "
            f"{', '.join(heapq.nsmallest(30, kinds))}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConstraintSyntaxError(f"{where} lists {', '.join(map(repr, dupes))} more than once")
    return tuple(names)


def _sum(scope: Scope, index: int, c: Sum) -> Check:
    names = _known(c.variables, scope.kinds, "sum")
    text = [n for n in names if scope.kinds[n] == "str"]
    if text:
        raise ConstraintSyntaxError(f"sum over text variable(s) {', '.join(text)}; sums need integer domains")
    weights = tuple(c.weights or [1] * len(names))
    compare, target = _OPS[c.op], c.value

    def predicate(*vals: int) -> bool:
        return compare(sum(w * v for w, v in zip(weights, vals)), target)

    native = None
    non_negative = all(scope.lowest(n) >= 0 for n in names)
    if c.weights is None and non_negative and c.op in ("==", "<=", ">="):
        cls = _SAFE_SUMS[c.op]
        native = lambda deadline: cls(target, deadline)  # noqa: E731
    return Check(index, names, predicate, native)


def _safe_sum(cls: type) -> type:
    """A python-constraint sum that checks the deadline at each call and in preprocessing.

    Its preprocessing also calls min() on each domain; an earlier constraint (or, for a sum over one
    variable, its own first pass) may have emptied one: the problem is then unsat, which the solver
    reports once preprocessing is done.
    """

    class Safe(cls):
        def __init__(self, target: int, deadline: Deadline):
            super().__init__(target)
            self._deadline = deadline

        def preProcess(self, variables, domains, constraints, vconstraints):  # noqa: N802 (library API)
            self._deadline.check()
            try:
                if all(domains[v] for v in variables):
                    super().preProcess(variables, domains, constraints, vconstraints)
            except ValueError:
                if all(domains[v] for v in variables):
                    raise

        def __call__(self, variables, domains, assignments, forwardcheck=False):
            self._deadline.check()
            return super().__call__(variables, domains, assignments, forwardcheck)

    Safe.__name__ = f"Safe{cls.__name__}"
    return Safe


_SAFE_SUMS = {"==": _safe_sum(pc.ExactSumConstraint), "<=": _safe_sum(pc.MaxSumConstraint),
              ">=": _safe_sum(pc.MinSumConstraint)}


def _combine(index: int, exprs: list, join: Callable[..., bool]) -> Check:
    """A check over the union of several expressions' variables."""
    names: list[str] = []
    for e in exprs:
        names += [v for v in e.variables if v not in names]
    picks = [tuple(names.index(v) for v in e.variables) for e in exprs]

    def predicate(*vals: Any) -> bool:
        return join(*(bool(e(*(vals[i] for i in pick))) for e, pick in zip(exprs, picks)))

    return Check(index, tuple(names), predicate)

"""Compile each CSP constraint into a check: its variables, a predicate, and a python-constraint object.

The predicate takes the variables' values positionally (python-constraint's
calling convention). Where python-constraint has a native propagator
(all-different, unweighted sums over non-negative integers) the bridge uses
it; everything else becomes a ``FunctionConstraint`` over the predicate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import constraint as pc

from plait.errors import ConstraintSyntaxError
from plait.solvers._expr import parse_expr
from plait.solvers._propagate import AllDifferentPropagator
from plait.solvers._model import CSP, AllDifferent, AnyOf, Compare, Expression, Implies, Sum, Table

__all__ = ["Check", "compile_constraint", "compile_all"]

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
    native: Callable[[], pc.Constraint] | None = None

    def holds(self, assignment: Mapping[str, Any]) -> bool:
        return bool(self.predicate(*(assignment[v] for v in self.variables)))

    def to_python_constraint(self) -> pc.Constraint:
        if self.native is not None:
            return self.native()
        return pc.FunctionConstraint(self.predicate)


def compile_all(csp: CSP) -> list[Check]:
    """Compile every constraint; raise :class:`ConstraintSyntaxError` listing all problems at once."""
    checks, problems = [], []
    for i in range(len(csp.constraints)):
        try:
            checks.append(compile_constraint(csp, i))
        except ConstraintSyntaxError as exc:
            problems.append(f"constraint #{i} ({csp.constraints[i].kind}): {exc}")
    if problems:
        raise ConstraintSyntaxError("invalid constraints:\n" + "\n".join(f"  - {p}" for p in problems))
    return checks


def compile_constraint(csp: CSP, index: int) -> Check:
    c = csp.constraints[index]
    kinds = csp.kinds
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
        return _sum(csp, index, c)
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
            f"{', '.join(sorted(kinds)[:30])}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConstraintSyntaxError(f"{where} lists {', '.join(map(repr, dupes))} more than once")
    return tuple(names)


def _sum(csp: CSP, index: int, c: Sum) -> Check:
    names = _known(c.variables, csp.kinds, "sum")
    text = [n for n in names if csp.kinds[n] == "str"]
    if text:
        raise ConstraintSyntaxError(f"sum over text variable(s) {', '.join(text)}; sums need integer domains")
    weights = tuple(c.weights or [1] * len(names))
    compare, target = _OPS[c.op], c.value

    def predicate(*vals: int) -> bool:
        return compare(sum(w * v for w, v in zip(weights, vals)), target)

    native = None
    domains = csp.domains
    non_negative = all(min(domains[n]) >= 0 for n in names)
    if c.weights is None and non_negative and c.op in ("==", "<=", ">="):
        cls = _SAFE_SUMS[c.op]
        native = lambda: cls(target)  # noqa: E731
    return Check(index, names, predicate, native)


def _skip_preprocess_on_empty_domains(cls: type) -> type:
    """python-constraint's sum preprocessing calls min() on each domain; an earlier constraint may have
    emptied one (the problem is then unsat, which the solver reports once preprocessing is done)."""

    class Safe(cls):  # type: ignore[misc, valid-type]
        def preProcess(self, variables, domains, constraints, vconstraints):  # noqa: N802 (library API)
            if all(domains[v] for v in variables):
                super().preProcess(variables, domains, constraints, vconstraints)

    Safe.__name__ = f"Safe{cls.__name__}"
    return Safe


_SAFE_SUMS = {"==": _skip_preprocess_on_empty_domains(pc.ExactSumConstraint),
              "<=": _skip_preprocess_on_empty_domains(pc.MaxSumConstraint),
              ">=": _skip_preprocess_on_empty_domains(pc.MinSumConstraint)}


def _combine(index: int, exprs: list, join: Callable[..., bool]) -> Check:
    """A check over the union of several expressions' variables."""
    names: list[str] = []
    for e in exprs:
        names += [v for v in e.variables if v not in names]
    picks = [tuple(names.index(v) for v in e.variables) for e in exprs]

    def predicate(*vals: Any) -> bool:
        return join(*(bool(e(*(vals[i] for i in pick))) for e, pick in zip(exprs, picks)))

    return Check(index, tuple(names), predicate)

"""A :class:`CSP` translated into an OR-Tools CP-SAT model (the engine in :mod:`plait.solvers._engine_ortools`).

Constraint text is translated from the same checked syntax tree plait's own
evaluator compiles (it was accepted by :func:`~plait.solvers.parse_expr`
first): ``+ - *`` become linear terms or multiplication equalities, ``abs min
max`` CP-SAT's equalities, comparisons linear constraints, ``and or not`` and
truth values of numbers fully reified literals (so every helper variable is a
function of the CSP's variables and enumeration never repeats an assignment).
Text values are integer codes shared by all variables. What CP-SAT cannot
express with the meaning plait's evaluator gives it raises :class:`Unsupported`
and the caller falls back to python-constraint: ``//`` and ``%`` unless both
sides are provably non-negative and the divisor never zero (Python floors,
CP-SAT truncates; a zero divisor makes plait's condition false), and
intermediate values beyond ``2**53``.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

from ortools.sat.python import cp_model as cp

from plait.solvers._deadline import Deadline
from plait.solvers._engines import Unsupported
from plait.solvers._model import CSP, AllDifferent, AnyOf, Compare, Implies, IntRange, Sum, Table

__all__ = ["Translator"]

_BOUND = 2**53
"""Largest magnitude of any value handed to CP-SAT (its arithmetic is 64-bit and checks for overflow)."""
_NEGATE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


@dataclasses.dataclass(frozen=True)
class _Num:
    """A translated number: a CP-SAT expression (or a Python int) and its bounds."""

    expr: Any
    lo: int
    hi: int


def _compare(a: Any, op: str, b: Any) -> Any:
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


class Translator:
    """Builds ``self.m`` from a CSP's variables and, one by one (:meth:`add`), its constraints."""

    def __init__(self, csp: CSP, deadline: Deadline):
        self.m = cp.CpModel()
        self.deadline = deadline
        self.codes: dict[str, int] = {}
        for var in csp.variables:  # text values get codes first, in declaration order
            if var.kind == "str":
                for value in var.values:
                    self.code(value)
        self.text = {var.name for var in csp.variables if var.kind == "str"}
        self.vars: dict[str, Any] = {}
        self.bounds: dict[str, tuple[int, int]] = {}
        for var in csp.variables:
            deadline.check()
            if isinstance(var.domain, IntRange):
                lo, hi = var.domain.min, var.domain.max
                self.vars[var.name] = self.m.new_int_var(lo, hi, var.name)
            else:
                values = [self.code(v) if isinstance(v, str) else v for v in var.values]
                lo, hi = min(values), max(values)
                self.vars[var.name] = self.m.new_int_var_from_domain(cp.Domain.from_values(values), var.name)
            self.bounds[var.name] = (lo, hi)
        self.true = self.m.new_bool_var("true")
        self.m.add(self.true == 1)

    def code(self, value: str) -> int:
        return self.codes.setdefault(value, len(self.codes))

    def encode(self, value: Any) -> int:
        return self.code(value) if isinstance(value, str) else value

    # -- constraints ---------------------------------------------------------------
    def add(self, c: Any) -> None:
        if isinstance(c, AllDifferent):
            self.m.add_all_different([self.vars[n] for n in c.variables])
        elif isinstance(c, Sum):
            weights = c.weights or [1] * len(c.variables)
            self.m.add(_compare(sum(w * self.vars[n] for w, n in zip(weights, c.variables)), c.op, c.value))
        elif isinstance(c, Table):
            self._table(c)
        elif isinstance(c, Implies):
            self.m.add_bool_or([~self.lit(_tree(c.if_)), self.lit(_tree(c.then))])
        elif isinstance(c, AnyOf):
            self.m.add_bool_or([self.lit(_tree(text)) for text in c.conditions])
        else:
            self.post(_tree(c.text if isinstance(c, Compare) else c.expression))

    def _table(self, c: Table) -> None:
        rows = set()
        for i, row in enumerate(c.rows):  # a row with a value of the wrong kind can never match: leave it out
            if i % 1000 == 0:
                self.deadline.check()
            if all(isinstance(v, str) == (n in self.text) for v, n in zip(row, c.variables)):
                rows.add(tuple(self.encode(v) for v in row))
        variables = [self.vars[n] for n in c.variables]
        if c.forbidden:
            if rows:
                self.m.add_forbidden_assignments(variables, sorted(rows))
        elif rows:
            self.m.add_allowed_assignments(variables, sorted(rows))
        else:
            self.m.add_bool_or([])  # no row allowed: no solution

    def post(self, node: ast.expr) -> None:
        """Require ``node`` to hold; a plain comparison or conjunction needs no helper literal."""
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            for part in node.values:
                self.post(part)
        elif isinstance(node, ast.Compare):
            for left, op, right in self.pairs(node):
                if _constant(left) and _constant(right):
                    if not _compare(left.expr, op, right.expr):
                        self.m.add_bool_or([])
                else:
                    self.m.add(_compare(left.expr, op, right.expr))
        else:
            self.m.add_bool_or([self.lit(node)])

    # -- truth values ---------------------------------------------------------------
    def pairs(self, node: ast.Compare) -> list[tuple[_Num, str, _Num]]:
        operands = [self.num(node.left)] + [self.num(c) for c in node.comparators]
        return [(operands[i], _CMP[type(op)], operands[i + 1]) for i, op in enumerate(node.ops)]

    def lit(self, node: ast.expr) -> Any:
        """A literal that is true exactly when ``node`` is truthy."""
        if isinstance(node, ast.Compare):
            return self.both([self.reify(a, op, b) for a, op, b in self.pairs(node)], ast.And())
        if isinstance(node, ast.BoolOp):
            return self.both([self.lit(v) for v in node.values], node.op)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~self.lit(node.operand)
        return self.reify(self.num(node), "!=", _Num(0, 0, 0))

    def reify(self, a: _Num, op: str, b: _Num) -> Any:
        if _constant(a) and _constant(b):
            return self.true if _compare(a.expr, op, b.expr) else ~self.true
        lit = self.m.new_bool_var("")
        self.m.add(_compare(a.expr, op, b.expr)).only_enforce_if(lit)
        self.m.add(_compare(a.expr, _NEGATE[op], b.expr)).only_enforce_if(~lit)
        return lit

    def both(self, lits: list[Any], op: ast.boolop) -> Any:
        if len(lits) == 1:
            return lits[0]
        lit = self.m.new_bool_var("")
        if isinstance(op, ast.And):
            self.m.add_bool_and(lits).only_enforce_if(lit)
            self.m.add_bool_or([~x for x in lits]).only_enforce_if(~lit)
        else:
            self.m.add_bool_or(lits).only_enforce_if(lit)
            self.m.add_bool_and([~x for x in lits]).only_enforce_if(~lit)
        return lit

    # -- numbers ----------------------------------------------------------------------
    def num(self, node: ast.expr) -> _Num:
        found = self._num(node)
        if max(abs(found.lo), abs(found.hi)) > _BOUND:
            raise Unsupported(f"{ast.unparse(node)!r} can reach values beyond CP-SAT's range (2**53)")
        return found

    def _num(self, node: ast.expr) -> _Num:
        if isinstance(node, ast.Name):
            return _Num(self.vars[node.id], *self.bounds[node.id])
        if isinstance(node, ast.Constant):
            value = self.encode(node.value)
            return _Num(value, value, value)
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            inner = self.num(node.operand)
            return _Num(-inner.expr, -inner.hi, -inner.lo) if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        return _Num(self.lit(node), 0, 1)  # a condition used as a number: 1 or 0

    def binop(self, node: ast.BinOp) -> _Num:
        a = self.num(node.left)
        if isinstance(node.op, ast.Pow):
            power: int = node.right.value  # type: ignore[attr-defined]  # parse_expr allows only a literal
            result = _Num(1, 1, 1)
            for _ in range(power):
                result = self.product(result, a)
            return result
        b = self.num(node.right)
        if isinstance(node.op, ast.Add):
            return _Num(a.expr + b.expr, a.lo + b.lo, a.hi + b.hi)
        if isinstance(node.op, ast.Sub):
            return _Num(a.expr - b.expr, a.lo - b.hi, a.hi - b.lo)
        if isinstance(node.op, ast.Mult):
            return self.product(a, b)
        if a.lo < 0 or b.lo <= 0:
            raise Unsupported(f"{ast.unparse(node)!r} divides where a side may be negative or the divisor zero")
        if isinstance(node.op, ast.FloorDiv):
            target = self.m.new_int_var(a.lo // b.hi, a.hi // b.lo, "")
            self.m.add_division_equality(target, self.var(a), self.var(b))
            return _Num(target, a.lo // b.hi, a.hi // b.lo)
        target = self.m.new_int_var(0, min(a.hi, b.hi - 1), "")
        self.m.add_modulo_equality(target, self.var(a), self.var(b))
        return _Num(target, 0, min(a.hi, b.hi - 1))

    def product(self, a: _Num, b: _Num) -> _Num:
        corners = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        lo, hi = min(corners), max(corners)
        if _constant(a) or _constant(b):
            return _Num(a.expr * b.expr, lo, hi)
        if max(abs(lo), abs(hi)) > _BOUND:
            raise Unsupported("a product can reach values beyond CP-SAT's range (2**53)")
        target = self.m.new_int_var(lo, hi, "")
        self.m.add_multiplication_equality(target, [self.var(a), self.var(b)])
        return _Num(target, lo, hi)

    def call(self, node: ast.Call) -> _Num:
        name = node.func.id  # type: ignore[attr-defined]  # parse_expr allows only abs/min/max/sum
        args = node.args[0].elts if len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)) \
            else node.args
        parts = [self.num(a) for a in args]
        if name == "sum":
            return _Num(sum(p.expr for p in parts), sum(p.lo for p in parts), sum(p.hi for p in parts))
        if name == "abs":
            (x,) = parts
            lo = 0 if x.lo <= 0 <= x.hi else min(abs(x.lo), abs(x.hi))
            target = self.m.new_int_var(lo, max(abs(x.lo), abs(x.hi)), "")
            self.m.add_abs_equality(target, x.expr)
            return _Num(target, lo, max(abs(x.lo), abs(x.hi)))
        pick = min if name == "min" else max
        lo, hi = pick(p.lo for p in parts), pick(p.hi for p in parts)
        target = self.m.new_int_var(lo, hi, "")
        (self.m.add_min_equality if name == "min" else self.m.add_max_equality)(target, [p.expr for p in parts])
        return _Num(target, lo, hi)

    def var(self, x: _Num) -> Any:
        """``x`` as a single variable or constant (what multiplication, division and modulo take)."""
        if isinstance(x.expr, (int, cp.IntVar)):
            return x.expr
        target = self.m.new_int_var(x.lo, x.hi, "")
        self.m.add(target == x.expr)
        return target


def _constant(x: _Num) -> bool:
    return isinstance(x.expr, int)


def _tree(text: str) -> ast.expr:
    return ast.parse(text.strip(), mode="eval").body

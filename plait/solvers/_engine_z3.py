"""The z3 engine: a :class:`CSP` translated to z3 terms with Python's exact meaning, and solved under the deadline.

z3 can state everything plait's constraint language means, so nothing falls
back: each expression is translated to a value and a condition ``ok`` that
holds when evaluating it raises nothing. ``//`` and ``%`` floor as Python's do
(z3's own division is Euclidean), a zero divisor makes ``ok`` false and with it
the constraint (plait's evaluator counts it false too), and ``and``/``or``
short-circuit, yielding a truth value as plait's evaluator does. Text values are
integer codes shared by all variables.

Each solve gets a z3 context of its own (z3's default context is not thread
safe and solves run in worker threads). The deadline holds inside z3: each
check gets the time left as z3's ``timeout``, translation and enumeration check
the clock between steps, and a watcher interrupts z3 as soon as the caller's
``stop`` event is set. ``mode="all"`` enumerates by blocking each solution found.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

import z3

from plait.solvers._bridge import CSPResult, result_for, stop_reason
from plait.solvers._compile import Check
from plait.solvers._deadline import Deadline, Stopped
from plait.solvers._engines import Unsupported, refuse_fixed
from plait.solvers._model import CSP, AllDifferent, AnyOf, Compare, Implies, IntRange, Sum, Table

__all__ = ["search"]

MAX_RUNS = 1_000
"""Most runs of consecutive values a listed domain may have for z3 (each run is one interval term; building a
disjunction of 100,000 equalities takes seconds): wider listings fall back to python-constraint."""
_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _compare(a: Any, op: str, b: Any) -> Any:
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


class _Translator:
    def __init__(self, csp: CSP, ctx: z3.Context, deadline: Deadline):
        self.ctx = ctx
        self.true = z3.BoolVal(True, ctx)
        self.codes: dict[str, int] = {}
        self.text = {v.name for v in csp.variables if v.kind == "str"}
        self.vars = {v.name: z3.Int(v.name, ctx) for v in csp.variables}
        self.deadline = deadline
        self.domains = []
        for v in csp.variables:
            deadline.check()
            x = self.vars[v.name]
            if isinstance(v.domain, IntRange):
                self.domains.append(z3.And(x >= v.domain.min, x <= v.domain.max))
                continue
            runs = _runs(sorted(self.encode(value) for value in v.values))
            if len(runs) > MAX_RUNS:
                raise Unsupported(f"variable {v.name!r}, whose {len(v.values)} listed values make {len(runs)} "
                                  f"separate runs (z3 gets at most MAX_RUNS = {MAX_RUNS})")
            self.domains.append(z3.Or([x == lo if lo == hi else z3.And(x >= lo, x <= hi) for lo, hi in runs]))

    def code(self, value: str) -> int:
        return self.codes.setdefault(value, len(self.codes))

    def encode(self, value: Any) -> int:
        return self.code(value) if isinstance(value, str) else value

    def constraint(self, c: Any) -> Any:
        if isinstance(c, AllDifferent):
            return z3.Distinct([self.vars[n] for n in c.variables])
        if isinstance(c, Sum):
            weights = c.weights or [1] * len(c.variables)
            return _compare(z3.Sum([w * self.vars[n] for w, n in zip(weights, c.variables)]), c.op, c.value)
        if isinstance(c, Table):
            terms = []
            for i, row in enumerate(c.rows):
                if i % 500 == 0:
                    self.deadline.check()
                if all(isinstance(v, str) == (n in self.text) for v, n in zip(row, c.variables)):  # else never matches
                    terms.append(z3.And([self.vars[n] == self.encode(v) for n, v in zip(c.variables, row)]))
            match = z3.Or(terms) if terms else z3.BoolVal(False, self.ctx)
            return z3.Not(match) if c.forbidden else match
        if isinstance(c, Implies):
            return z3.Or(z3.Not(self.holds(c.if_)), self.holds(c.then))
        if isinstance(c, AnyOf):
            return z3.Or([self.holds(text) for text in c.conditions])
        return self.holds(c.text if isinstance(c, Compare) else c.expression)

    def holds(self, text: str) -> Any:
        """True exactly when plait's evaluator finds ``text`` true: evaluated without error, and truthy."""
        value, ok = self.term(ast.parse(text.strip(), mode="eval").body)
        return z3.And(ok, self.truth(value))

    def truth(self, value: Any) -> Any:
        return value if z3.is_bool(value) else value != 0

    def number(self, value: Any) -> Any:
        return z3.If(value, z3.IntVal(1, self.ctx), z3.IntVal(0, self.ctx)) if z3.is_bool(value) else value

    def term(self, node: ast.expr) -> tuple[Any, Any]:
        """(value, ok): the z3 term of ``node`` and when evaluating it raises nothing."""
        if isinstance(node, ast.Name):
            return self.vars[node.id], self.true
        if isinstance(node, ast.Constant):
            return z3.IntVal(self.encode(node.value), self.ctx), self.true
        if isinstance(node, ast.UnaryOp):
            value, ok = self.term(node.operand)
            if isinstance(node.op, ast.Not):
                return z3.Not(self.truth(value)), ok
            return (-self.number(value) if isinstance(node.op, ast.USub) else self.number(value)), ok
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Compare):
            return self.chain(node)
        return self.boolop(node)  # type: ignore[arg-type]  # parse_expr admits nothing else

    def binop(self, node: ast.BinOp) -> tuple[Any, Any]:
        a, ok_a = self.term(node.left)
        a = self.number(a)
        if isinstance(node.op, ast.Pow):
            result = z3.IntVal(1, self.ctx)
            for _ in range(node.right.value):  # type: ignore[attr-defined]  # a literal, checked by parse_expr
                result = result * a
            return result, ok_a
        b, ok_b = self.term(node.right)
        b = self.number(b)
        ok = z3.And(ok_a, ok_b)
        if isinstance(node.op, ast.Add):
            return a + b, ok
        if isinstance(node.op, ast.Sub):
            return a - b, ok
        if isinstance(node.op, ast.Mult):
            return a * b, ok
        floor = z3.If(b > 0, a / b, (-a) / (-b))  # Python floors; z3's division is Euclidean (the same for b > 0)
        ok = z3.And(ok, b != 0)
        return (floor if isinstance(node.op, ast.FloorDiv) else a - b * floor), ok

    def call(self, node: ast.Call) -> tuple[Any, Any]:
        name = node.func.id  # type: ignore[attr-defined]  # abs/min/max/sum, checked by parse_expr
        args = node.args[0].elts if len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)) \
            else node.args
        terms = [self.term(a) for a in args]
        values, ok = [self.number(v) for v, _ in terms], z3.And([o for _, o in terms])
        if name == "abs":
            return z3.If(values[0] < 0, -values[0], values[0]), ok
        if name == "sum":
            return z3.Sum(values), ok
        result = values[0]
        for v in values[1:]:
            result = z3.If(v < result, v, result) if name == "min" else z3.If(v > result, v, result)
        return result, ok

    def chain(self, node: ast.Compare) -> tuple[Any, Any]:
        """``a < b < c``: comparisons joined by ``and``; ``c`` is only evaluated when ``a < b`` holds."""
        left, ok = self.term(node.left)
        truths: list[Any] = []
        for op, right_node in zip(node.ops, node.comparators):
            right, ok_right = self.term(right_node)
            ok = z3.And(ok, z3.Or(z3.Not(z3.And(truths)), ok_right)) if truths else z3.And(ok, ok_right)
            if z3.is_bool(left) or z3.is_bool(right):  # Python compares truth values as 0 and 1
                left, right = self.number(left), self.number(right)
            truths.append(_compare(left, _CMP[type(op)], right))
            left = right
        return z3.And(truths), ok

    def boolop(self, node: ast.BoolOp) -> tuple[Any, Any]:
        """``and``/``or`` yield a truth value (as plait's evaluator does) and stop at the first operand that
        decides it: a later operand's error only counts when it is reached."""
        terms = [self.term(v) for v in node.values]
        truths = [self.truth(v) for v, _ in terms]
        ok = terms[-1][1]
        for truth, (_, ok_v) in zip(reversed(truths[:-1]), reversed(terms[:-1])):
            decides = truth if isinstance(node.op, ast.Or) else z3.Not(truth)
            ok = z3.And(ok_v, z3.Or(decides, ok))
        return (z3.Or(truths) if isinstance(node.op, ast.Or) else z3.And(truths)), ok

def search(csp: CSP, checks: list[Check], deadline: Deadline, *, mode: Literal["one", "all"] = "one",
           max_solutions: int = 1000, fixed: Mapping[str, Any] | None = None,
           started: float | None = None) -> CSPResult:
    """Translate and solve ``csp`` with z3 until ``deadline``. Solutions are re-checked by the portfolio."""
    started = time.perf_counter() if started is None else started
    limit = 1 if mode == "one" else max(1, max_solutions)
    ctx = z3.Context()
    found: list[dict[str, Any]] = []
    try:
        t = _Translator(csp, ctx, deadline)
        solver = z3.Solver(ctx=ctx)
        solver.add(*t.domains)
        refused = refuse_fixed(csp, fixed or {}, t.vars, t.text, started, "z3")
        if refused is not None:
            return refused
        for name, value in (fixed or {}).items():
            solver.add(t.vars[name] == t.encode(value))
        for check in checks:
            deadline.check()
            solver.add(t.constraint(csp.constraints[check.index]))
        decode = {code: text for text, code in t.codes.items()}
        with _interrupted_on(deadline.stop, ctx):
            while len(found) < limit:
                deadline.check()
                if deadline.at is not None:
                    solver.set("timeout", max(1, int((deadline.at - time.monotonic()) * 1000)))
                outcome = solver.check()
                if outcome == z3.unsat:
                    return result_for(csp, "sat" if found else "unsat", found, started, exhaustive=True, engine="z3")
                if outcome != z3.sat:
                    deadline.check()  # out of time, or cancelled: the interrupt
                    raise Unsupported(f"a problem z3 gave up on ({solver.reason_unknown()})")
                model = solver.model()
                values = {n: model.eval(x, model_completion=True).as_long() for n, x in t.vars.items()}
                found.append({n: decode[v] if n in t.text else v for n, v in values.items()})
                solver.add(z3.Or([x != values[n] for n, x in t.vars.items()]))
    except Stopped:
        return result_for(csp, "sat" if found else "timeout", found, started, timed_out=True, engine="z3",
                          error=stop_reason(deadline))
    return result_for(csp, "sat", found, started, engine="z3")


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct integers as runs of consecutive values, ``(first, last)``."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


class _interrupted_on:
    """Interrupt z3 in ``ctx`` from a watcher thread as soon as ``stop`` is set (nothing when it is None)."""

    def __init__(self, stop: threading.Event | None, ctx: z3.Context):
        self.stop, self.ctx, self.done = stop, ctx, threading.Event()
        self.watcher = threading.Thread(target=self.watch, name="plait-z3-stop", daemon=True)

    def watch(self) -> None:
        while not self.done.wait(0.01):
            if self.stop is not None and self.stop.is_set():
                self.ctx.interrupt()
                return

    def __enter__(self) -> None:
        if self.stop is not None:
            self.watcher.start()

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        if self.stop is not None:
            self.watcher.join()

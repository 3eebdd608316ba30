"""The compact formulation language: a CSP written as a few lines of text instead of JSON.

A JSON CSP costs a model ~15 tokens per variable and more per constraint;
a cryptarithm or an 8-queens model overran 2,048 tokens in every round. In
this language SEND+MORE=MONEY is about 100 tokens::

    S E N D M O R Y in 0..9
    alldifferent(S,E,N,D,M,O,R,Y)
    S != 0
    M != 0
    1000*S+100*E+10*N+D+1000*M+100*O+10*R+E == 10000*M+1000*O+100*N+10*E+Y

One statement per line; ``#`` starts a comment; a space after a comma or
around an operator is optional (the printer leaves it out: Qwen's tokenizer
spends a token on each). Statements, and the
:class:`CSP` constraint each becomes:

* ``A B C in 1..9`` / ``Color in {"red","blue"}``: variables with a range or a set of values;
* ``alldifferent(A,B,C)``: :class:`AllDifferent`; over expressions
  (``alldifferent(Q1+1,Q2+2,Q3+3)``) it becomes one ``!=`` expression per pair;
* ``sum(A,2*B,C) <= 10``: :class:`Sum` (weights optional);
* ``(A,B) in {(1,2),(2,3)}`` / ``(A,B) not in {...}``: :class:`Table`;
* ``A < 12 -> D > A``: :class:`Implies`; ``any(A == 1,B == 2)``: :class:`AnyOf`;
  ``compare(A+1 == B)``: :class:`Compare`;
* any other line is a condition in the safe expression language (:mod:`plait.solvers._expr`):
  :class:`Expression`, its text kept verbatim;
* ``{"kind": ...}``: one constraint as JSON, which :func:`format_formulation` writes for a constraint
  the forms above cannot carry exactly (say, an expression spanning lines).

:func:`parse_formulation` never evaluates text: lines are tokenized by one
regular expression, expressions go through the safe expression compiler, and
every limit of :mod:`plait.solvers._limits` holds (checked as lines are read,
so a hostile text stops at the first line over a limit). Every problem raises
:class:`~plait.errors.FormulationError` naming the line, the column and what to write instead.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from plait.errors import ConstraintSyntaxError, FormulationError
from plait.solvers._compile import Scope, compile_constraint
from plait.solvers._expr import parse_expr
from plait.solvers._language_lex import Declaration, DistinctExprs, Fail, Line, lex, read_statement
from plait.solvers._limits import MAX_CONSTRAINTS, MAX_TOTAL_SIZE, MAX_TOTAL_VALUES, MAX_VARIABLES
from plait.solvers._model import (
    CSP, AllDifferent, AnyOf, Compare, CSPConstraint, Expression, Implies, Sum, Table, Variable, _constraint_size)

__all__ = ["parse_formulation", "format_formulation", "MAX_FORMULATION_CHARS"]

MAX_FORMULATION_CHARS = 2_000_000
"""Longest text :func:`parse_formulation` reads (a CSP at every limit of ``_limits`` prints shorter)."""


def parse_formulation(text: str) -> CSP:
    """The :class:`CSP` a formulation describes; :class:`~plait.errors.FormulationError` if it has a problem.

    Every constraint is checked against the declared variables (as
    ``CSP.validate_constraints`` would), so a returned CSP is ready to solve.
    """
    if not isinstance(text, str):
        raise FormulationError(f"a formulation must be text, got {type(text).__name__}", "", 1, 1)
    if len(text) > MAX_FORMULATION_CHARS:
        line = text.count("\n", 0, MAX_FORMULATION_CHARS) + 1
        raise FormulationError(f"line {line}: the formulation is {len(text)} characters long; the limit "
                               f"MAX_FORMULATION_CHARS is {MAX_FORMULATION_CHARS}: write a smaller model",
                               text[:1000], line, 1)
    builder = _Builder(text)
    for number, raw in enumerate(text.split("\n"), 1):
        builder.read(number, raw.removesuffix("\r"))
    return builder.finish()


class _Builder:
    """Declarations and constraints gathered line by line, each limit checked as it is reached."""

    def __init__(self, text: str):
        self.text = text
        self.variables: list[Variable] = []
        self.declared: dict[str, int] = {}  # name -> line number
        self.values = 0
        self.constraints: list[CSPConstraint] = []
        self.origins: list[tuple[Line, int]] = []  # each constraint's line and column
        self.distinct: list[tuple[Line, DistinctExprs]] = []
        self.size = 0
        self.last: Line | None = None

    def fail(self, number: int, statement: str, column: int, message: str) -> FormulationError:
        shown = statement.strip()
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        return FormulationError(f"line {number}, column {column}: {message} (in: {shown})",
                                self.text[:100_000], number, column)

    def read(self, number: int, raw: str) -> None:
        try:
            line = lex(number, raw)
            if not line.tokens:
                return
            self.last = line
            statement = read_statement(line)
            if isinstance(statement, Declaration):
                self.declare(line, statement)
            elif isinstance(statement, DistinctExprs):
                self.distinct.append((line, statement))
                args = [text for text, _ in statement.args]
                self.room(len(args) * (len(args) - 1) // 2)  # before building the pairs
                self.add(line, [Expression(expression=f"{a} != {b}") for i, a in enumerate(args) for b in args[i + 1:]])
            else:
                self.add(line, [statement])
        except Fail as exc:
            raise self.fail(number, raw, exc.column, str(exc)) from None

    def room(self, count: int) -> None:
        if len(self.constraints) + count > MAX_CONSTRAINTS:
            raise Fail(f"this makes {len(self.constraints) + count} constraints; the limit MAX_CONSTRAINTS is "
                       f"{MAX_CONSTRAINTS}", 1)

    def declare(self, line: Line, declaration: Declaration) -> None:
        for name, column in declaration.names:
            if name in self.declared:
                raise Fail(f"variable {name!r} is already declared on line {self.declared[name]}; declare each "
                           "variable once (restrict it with a constraint instead)", column)
            if len(self.variables) == MAX_VARIABLES:
                raise Fail(f"more than {MAX_VARIABLES} variables; the limit MAX_VARIABLES is {MAX_VARIABLES}", column)
            try:  # one domain is at most MAX_DOMAIN values, checked before they are read
                variable = Variable.model_validate({"name": name, "domain": declaration.domain})
            except ValidationError as exc:
                raise Fail(f"variable {name!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}", column) from None
            self.values += declaration.size
            if self.values > MAX_TOTAL_VALUES:
                raise Fail(f"the domains so far hold {self.values} values; the limit MAX_TOTAL_VALUES is "
                           f"{MAX_TOTAL_VALUES}: use smaller ranges", column)
            self.variables.append(variable)
            self.declared[name] = line.number

    def add(self, line: Line, constraints: list[CSPConstraint]) -> None:
        self.room(len(constraints))
        self.size += sum(_constraint_size(c) for c in constraints)
        if self.size > MAX_TOTAL_SIZE:
            raise Fail(f"the constraints so far hold {self.size} characters and list entries; the limit "
                       f"MAX_TOTAL_SIZE is {MAX_TOTAL_SIZE}", 1)
        self.constraints += constraints
        self.origins += [(line, line.tokens[0].start + 1)] * len(constraints)

    def finish(self) -> CSP:
        if not self.variables:
            raise FormulationError("line 1, column 1: no variables are declared; start with a declaration such "
                                   "as 'A B C in 1..9'", self.text[:100_000], 1, 1)
        try:
            csp = CSP(variables=self.variables, constraints=self.constraints)
        except ValidationError as exc:  # checked line by line above; kept as a backstop
            assert self.last is not None
            raise self.fail(self.last.number, self.last.text, 1, exc.errors()[0]["msg"]) from None
        kinds = csp.kinds
        for line, statement in self.distinct:
            for text, column in statement.args:
                try:
                    numeric = not parse_expr(text, kinds, boolean=False).is_boolean
                except ConstraintSyntaxError as exc:
                    raise self.fail(line.number, line.text, self.column(line, column, str(exc)), str(exc)) from None
                if not numeric:
                    raise self.fail(line.number, line.text, column, f"alldifferent(...) takes variables or "
                                    f"arithmetic expressions, not the condition {text!r}")
        scope = Scope(csp)
        for index, (line, column) in enumerate(self.origins):
            try:
                compile_constraint(csp, index, scope)
            except ConstraintSyntaxError as exc:
                raise self.fail(line.number, line.text, self.column(line, column, str(exc)), str(exc)) from None
        return csp

    def column(self, line: Line, column: int, message: str) -> int:
        """Where an undeclared name the message names first appears in the line, else ``column``."""
        for token in line.tokens:
            named = f"variable {token.text!r}" in message or f"variable(s) {token.text!r}" in message
            if token.start + 1 >= column and token.kind == "name" and token.text not in self.declared and named:
                return token.start + 1
        return column


def format_formulation(csp: CSP) -> str:
    """``csp`` in the formulation language; ``parse_formulation`` of it equals ``csp`` (for a valid CSP).

    Consecutive variables with equal domains share a declaration line; a
    constraint that no compact form carries exactly is written as JSON.
    """
    lines: list[str] = []
    group: list[Variable] = []
    for variable in [*csp.variables, None]:
        if group and (variable is None or variable.domain != group[0].domain):
            lines.append(f"{' '.join(v.name for v in group)} in {_domain(group[0])}")
            group = []
        if variable is not None:
            group.append(variable)
    lines += [_constraint_line(c) for c in csp.constraints]
    return "\n".join(lines)


def _domain(variable: Variable) -> str:
    if isinstance(variable.domain, list):
        return "{" + ",".join(json.dumps(v, ensure_ascii=False) for v in variable.domain) + "}"
    return f"{variable.domain.min}..{variable.domain.max}"


def _constraint_line(c: CSPConstraint) -> str:
    compact = _compact(c)
    try:
        line = lex(1, compact)
        if line.tokens and "\n" not in compact and read_statement(line) == c:
            return compact
    except Fail:
        pass
    return json.dumps(c.model_dump(mode="json", by_alias=True), ensure_ascii=False)


def _compact(c: CSPConstraint) -> str:
    if isinstance(c, Expression):
        return c.expression
    if isinstance(c, AllDifferent):
        return f"alldifferent({','.join(c.variables)})"
    if isinstance(c, Sum):
        terms = c.variables if c.weights is None else [f"{w}*{v}" for w, v in zip(c.weights, c.variables)]
        return f"sum({','.join(terms)}) {c.op} {c.value}"
    if isinstance(c, Table):
        rows = ",".join("(" + ",".join(json.dumps(v, ensure_ascii=False) for v in row) + ")" for row in c.rows)
        return f"({','.join(c.variables)}) {'not in' if c.forbidden else 'in'} {{{rows}}}"
    if isinstance(c, Implies):
        return f"{c.if_} -> {c.then}"
    if isinstance(c, AnyOf):
        return f"any({','.join(c.conditions)})"
    assert isinstance(c, Compare)
    return f"compare({c.left} {c.op} {c.right})"

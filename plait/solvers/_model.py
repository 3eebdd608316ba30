"""The CSP model: finite-domain variables and constraints, as pydantic models.

The same model is what a user builds in code, what a model writes as JSON
(its JSON schema is the structured-output constraint of :class:`Formulate`),
and what :class:`SolveCSP` solves. Constraint kinds:

* ``all_different``: the listed variables take pairwise different values;
* ``compare``: ``left op right`` over expressions (``==``, ``!=``, ``<``...);
* ``expression``: any condition in the safe constraint language, e.g.
  ``abs(Q1 - Q2) != 1``; a bare string in ``constraints`` means this kind;
* ``sum``: ``sum(weights[i] * variables[i]) op value``;
* ``table``: the variables' value tuple is one of ``rows`` (or none of them
  with ``forbidden=True``);
* ``implies``: if condition ``if_`` holds then ``then`` holds;
* ``any_of``: at least one of several conditions holds (a disjunction).

Sizes are bounded (:mod:`plait.solvers._limits`): a model over a limit fails
validation with a message naming the limit.
"""

from __future__ import annotations

import json
import keyword
from collections import Counter
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plait.solvers._limits import (
    MAX_CONSTRAINTS, MAX_DOMAIN, MAX_TOTAL_SIZE, MAX_TOTAL_VALUES, MAX_VARIABLES, check_value, check_values)

__all__ = [
    "Variable", "IntRange", "AllDifferent", "Compare", "Expression", "Sum", "Table", "Implies", "AnyOf",
    "CSPConstraint", "CSP", "MAX_DOMAIN", "MAX_TOTAL_VALUES",
]

_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_RESERVED = {"abs", "min", "max", "sum", "True", "False", "None"}
Op = Literal["==", "!=", "<", "<=", ">", ">="]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _kind_required(schema: dict[str, Any]) -> None:
    """Structured output: make the model always write ``kind`` (it has a default for code)."""
    required = schema.setdefault("required", [])
    if "kind" not in required:
        required.insert(0, "kind")


class _Kinded(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=_kind_required)


class IntRange(_Strict):
    """The integers ``min..max``, both included."""

    min: int
    max: int

    @model_validator(mode="after")
    def _bounded(self) -> IntRange:
        check_value(self.min, "range bound")
        check_value(self.max, "range bound")
        if self.max < self.min:
            raise ValueError(f"empty range: max {self.max} < min {self.min}")
        if self.max - self.min + 1 > MAX_DOMAIN:
            raise ValueError(f"range {self.min}..{self.max} has more than {MAX_DOMAIN} values")
        return self


class Variable(_Strict):
    """A variable and its finite domain: a range of integers, or a list of integers or strings."""

    name: str = Field(pattern=_NAME)
    domain: Union[IntRange, list[int], list[str]]

    @field_validator("name")
    @classmethod
    def _usable_in_expressions(cls, name: str) -> str:
        if keyword.iskeyword(name) or name in _RESERVED or name.startswith("__"):
            raise ValueError(f"{name!r} cannot name a variable (a Python keyword, reserved name or dunder name)")
        return name

    @field_validator("domain", mode="before")
    @classmethod
    def _not_too_long(cls, domain: Any) -> Any:
        _at_most(domain, MAX_DOMAIN, "MAX_DOMAIN", "a domain of {} values")
        return domain

    @field_validator("domain")
    @classmethod
    def _finite(cls, domain: Any) -> Any:
        if isinstance(domain, list):
            if not domain:
                raise ValueError("a domain needs at least one value")
            check_values(domain, "domain value")
            if len(set(domain)) != len(domain):
                raise ValueError("domain values must be distinct")
        return domain

    @property
    def values(self) -> list[Any]:
        if isinstance(self.domain, IntRange):
            return list(range(self.domain.min, self.domain.max + 1))
        return list(self.domain)

    @property
    def kind(self) -> str:
        """``"str"`` for text domains, else ``"int"``."""
        return "str" if isinstance(self.domain, list) and isinstance(self.domain[0], str) else "int"

    @property
    def lowest(self) -> Any:
        """The smallest value, without listing a range."""
        return self.domain.min if isinstance(self.domain, IntRange) else min(self.domain)


def _at_most(value: Any, limit: int, name: str, what: str) -> None:
    """ValueError when ``value`` is a list longer than ``limit`` (checked before pydantic reads its entries)."""
    if isinstance(value, list) and len(value) > limit:
        raise ValueError(f"{what.format(len(value))}; the limit {name} is {limit}")


def _domain_size(domain: Any) -> int:
    return domain.max - domain.min + 1 if isinstance(domain, IntRange) else len(domain)


def _constraint_size(c: Any) -> int:
    """Characters of text plus entries of lists, what compiling and checking a constraint grows with."""
    if isinstance(c, Table):
        return len(c.variables) + sum(len(r) for r in c.rows)
    if isinstance(c, (AllDifferent, Sum)):
        return len(c.variables) + len(getattr(c, "weights", None) or ())
    if isinstance(c, Compare):
        return len(c.left) + len(c.right)
    if isinstance(c, Implies):
        return len(c.if_) + len(c.then)
    if isinstance(c, AnyOf):
        return sum(len(text) for text in c.conditions)
    return len(c.expression)


class AllDifferent(_Kinded):
    kind: Literal["all_different"] = "all_different"
    variables: list[str] = Field(min_length=2)


class Compare(_Kinded):
    kind: Literal["compare"] = "compare"
    left: str
    op: Op
    right: str

    @property
    def text(self) -> str:
        return f"({self.left}) {self.op} ({self.right})"


class Expression(_Kinded):
    kind: Literal["expression"] = "expression"
    expression: str


class Sum(_Kinded):
    kind: Literal["sum"] = "sum"
    variables: list[str] = Field(min_length=1)
    weights: list[int] | None = None
    op: Op = "=="
    value: int

    @model_validator(mode="after")
    def _weights_match(self) -> Sum:
        if self.weights is not None and len(self.weights) != len(self.variables):
            raise ValueError(f"sum has {len(self.variables)} variables but {len(self.weights)} weights")
        check_value(self.value, "sum value")
        check_values(self.weights or (), "sum weight")
        return self


class Table(_Kinded):
    kind: Literal["table"] = "table"
    variables: list[str] = Field(min_length=1)
    rows: list[list[Union[int, str]]]
    forbidden: bool = False

    @model_validator(mode="after")
    def _row_width(self) -> Table:
        for row in self.rows:
            if len(row) != len(self.variables):
                raise ValueError(f"table row {row[:10]} has {len(row)} values for {len(self.variables)} variables")
            check_values(row, "table value")
        return self


class Implies(_Kinded):
    kind: Literal["implies"] = "implies"
    if_: str = Field(alias="if")
    then: str


class AnyOf(_Kinded):
    kind: Literal["any_of"] = "any_of"
    conditions: list[str] = Field(min_length=1)


CSPConstraint = Annotated[
    Union[AllDifferent, Compare, Expression, Sum, Table, Implies, AnyOf], Field(discriminator="kind")]


def _disjoint_any_of(schema: dict[str, Any]) -> None:
    """Structured output: the constraint union as ``anyOf``, not pydantic's discriminated ``oneOf``.

    Each branch requires its own ``kind`` constant, so the branches are disjoint and ``anyOf`` means the same;
    xgrammar cannot prove that and warned "oneOf ... falling back to anyOf" on every compile.
    """
    items = schema["properties"]["constraints"]["items"]
    if "oneOf" in items:
        items["anyOf"] = items.pop("oneOf")
        items.pop("discriminator", None)


class CSP(_Strict):
    """A finite-domain constraint satisfaction problem.

    Build it in code or from JSON; call :meth:`validate_constraints` (done by
    the solver) to check every constraint against the declared variables.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=_disjoint_any_of)

    variables: list[Variable] = Field(min_length=1)
    constraints: list[CSPConstraint] = []

    @field_validator("variables", mode="before")
    @classmethod
    def _not_too_many(cls, value: Any) -> Any:
        _at_most(value, MAX_VARIABLES, "MAX_VARIABLES", "{} variables")
        return value

    @field_validator("constraints", mode="before")
    @classmethod
    def _bare_strings(cls, value: Any) -> Any:
        _at_most(value, MAX_CONSTRAINTS, "MAX_CONSTRAINTS", "{} constraints")
        if isinstance(value, list):
            return [{"kind": "expression", "expression": c} if isinstance(c, str) else c for c in value]
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> CSP:
        dupes = sorted(name for name, count in Counter(v.name for v in self.variables).items() if count > 1)
        if dupes:
            raise ValueError(f"variables declared more than once: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _bounded_size(self) -> CSP:
        total = sum(_domain_size(v.domain) for v in self.variables)
        if total > MAX_TOTAL_VALUES:
            raise ValueError(f"the domains hold {total} values in all; the limit MAX_TOTAL_VALUES is "
                             f"{MAX_TOTAL_VALUES}")
        size = sum(_constraint_size(c) for c in self.constraints)
        if size > MAX_TOTAL_SIZE:
            raise ValueError(f"the constraints hold {size} characters and list entries in all; the limit "
                             f"MAX_TOTAL_SIZE is {MAX_TOTAL_SIZE}")
        return self

    @property
    def domains(self) -> dict[str, list[Any]]:
        return {v.name: v.values for v in self.variables}

    @property
    def kinds(self) -> dict[str, str]:
        return {v.name: v.kind for v in self.variables}

    def describe(self, index: int) -> str:
        """One line naming constraint ``index`` for error messages and prompts."""
        c = self.constraints[index]
        if isinstance(c, Expression):
            body = c.expression
        elif isinstance(c, Compare):
            body = f"{c.left} {c.op} {c.right}"
        elif isinstance(c, Implies):
            body = f"if {c.if_} then {c.then}"
        elif isinstance(c, AnyOf):
            body = " or ".join(f"({text})" for text in c.conditions)
        else:
            body = json.dumps(c.model_dump(mode="json", exclude={"kind"}, exclude_none=True))
        return f"constraint #{index} ({c.kind}): {body}"

    def validate_constraints(self) -> list[str]:
        """Every problem with the constraints (unknown variables, unsafe or malformed text), one line each."""
        from plait.solvers._compile import compile_checks

        return compile_checks(self)[1]

    def violations(self, assignment: dict[str, Any]) -> list[int]:
        """Indices of constraints whose variables are all assigned and which the assignment breaks."""
        from plait.solvers._compile import compile_all

        return [check.index for check in compile_all(self)
                if all(v in assignment for v in check.variables) and not check.holds(assignment)]

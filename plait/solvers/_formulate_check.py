"""Judging one formulation: parse it, hold it to the required answer, solve it, and say exactly what is wrong.

:func:`judge_csp` turns one parsed model into a :class:`FormulationRound` (replies that do not parse are
judged in :mod:`plait.solvers._formulate_repair`). Its ``finding`` is what the model is told next (None:
accepted):

* a copy of a worked example, or lacking a required answer variable: not ``solved``;
* constraints naming undeclared variables: the names, with the declared name or text value meant when one
  matches but for case;
* unsatisfiable: a minimal set of constraints that cannot hold together (``conflict``);
* several solutions where one is wanted: two of them and the variables they differ in.

All of it runs in a worker thread under one :class:`Deadline` (see :class:`~plait.solvers.Formulate`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from plait._json import problem_lines
from plait.errors import ConfigError
from plait.solvers._bridge import CSPResult
from plait.solvers._compile import compile_checks
from plait.solvers._core import conflicting_constraints
from plait.solvers._deadline import Deadline, Stopped
from plait.solvers._engines import search_with
from plait.solvers._model import CSP, IntRange, Variable

__all__ = ["FormulationRound", "RoundStatus", "AnswerSpec", "answer_spec", "answer_hint", "judge_csp", "fingerprint",
           "example_print", "unknown_names", "undeclared_hint"]

MAX_REPLY_CHARS = 1_000_000
"""Longest reply that is parsed at all (a 2,048-token formulation is about 10,000 characters)."""
LISTED = 20
"""Most invalid or conflicting constraints listed in one finding."""

ExamplePrint = tuple[str, frozenset[str], frozenset[str], str]
"""A worked example's variables, constraints, names and puzzle, as :func:`example_print` writes them."""
RoundStatus = Literal["solved", "invalid", "unsat", "ambiguous", "timeout", "repeat"]
AnswerSpec = dict[str, Variable | None]
"""Required answer variables: name to the declared variable whose domain bounds it (None: any domain)."""


class FormulationRound(BaseModel):
    """One formulation the model wrote and what came of it.

    ``sample`` is which of the k formulations of a vote (0 without one), ``round`` its repair round (from 1).
    ``status`` ``repeat``: the reply repeated round ``repeat_of`` (its text, or its CSP) and was not judged
    again; the next request was re-sampled at ``temperature`` instead. ``restored``: variables (and their
    constraints) a repair dropped, kept from the model before; ``narrowed``: answer variables whose declared
    domain was cut to the required one; ``conflict``: indices of an unsatisfiable core.
    """

    sample: int = 0
    round: int
    status: RoundStatus
    csp: CSP | None = None
    result: CSPResult | None = None
    finding: str | None = None
    conflict: list[int] = []
    restored: list[str] = []
    narrowed: list[str] = []
    truncated: bool = False
    copied: bool = False
    repeat_of: int | None = None
    temperature: float = 0.0
    completion_tokens: int = 0


def answer_spec(answer: list[str] | dict[str, Any] | None) -> AnswerSpec:
    """``answer=`` of :class:`Formulate` checked: a list of names, or names to domains (None, a ``range``, or any
    domain a :class:`Variable` takes). Raises :class:`ConfigError` naming the culprit."""
    if answer is None:
        return {}
    if isinstance(answer, str) or not isinstance(answer, (list, tuple, dict)):
        raise ConfigError(f"Formulate answer= takes a list of variable names or a dict of names to domains, "
                          f"got {answer!r}")
    items = answer.items() if isinstance(answer, dict) else ((name, None) for name in answer)
    spec: AnswerSpec = {}
    for name, domain in items:
        if isinstance(domain, range):
            domain = list(domain)
        try:
            variable = Variable(name=name, domain=[0] if domain is None else domain)
        except ValidationError as exc:
            raise ConfigError(f"Formulate answer variable {name!r} (domain {domain!r}) is not usable: "
                              f"{'; '.join(problem_lines(exc, 'answer'))}") from None
        spec[name] = None if domain is None else variable
    return spec


def answer_hint(spec: AnswerSpec) -> str:
    """The line added to the puzzle naming the variables the model must declare."""
    return f"Declare these answer variables: {_named(spec)}." if spec else ""


def _named(spec: AnswerSpec) -> str:
    return ", ".join(name if v is None else f"{name} (domain {_domain_text(v)})" for name, v in spec.items())


def fingerprint(csp: CSP) -> str:
    """Canonical JSON of a CSP: two models with the same fingerprint are the same model."""
    return json.dumps(csp.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=True,
                      separators=(",", ":"))


def judge_csp(csp: CSP, *, base: dict[str, Any], answer: AnswerSpec, expect_unique: bool,
              examples: list[ExamplePrint], problem: str, deadline: Deadline,
              engine: str = "python-constraint") -> FormulationRound:
    """Judge a parsed model: a worked example's copy, the answer variables, the constraints, then the solver."""
    copied = _copied_example(csp, examples, problem)
    if copied:
        return FormulationRound(status="invalid", csp=csp, copied=True, **base, finding=(
            f"Your model is the worked example's model ({copied}), not a model of this puzzle. Model this "
            "puzzle's own facts."))
    csp, narrowed, finding = _hold_answer(csp, answer)
    found = FormulationRound(status="solved", csp=csp, narrowed=narrowed, **base)
    if finding is not None:
        return found.model_copy(update={"status": "invalid", "finding": finding})
    timed_out = found.model_copy(update={"status": "timeout", "finding": (
        f"The solver found no solution within {deadline.seconds:g}s. Use smaller domains or tighter "
        "constraints that state the puzzle's facts directly.")})
    try:
        checks, problems = compile_checks(csp, deadline)
    except Stopped:
        return timed_out
    if problems:
        return found.model_copy(update={"status": "invalid", "finding": _invalid(csp, problems)})
    result = search_with(engine, csp, checks, deadline, mode="all" if expect_unique else "one", max_solutions=2)
    found = found.model_copy(update={"result": result})
    if result.status == "invalid":
        return found.model_copy(update={"status": "invalid", "finding": f"The model could not be solved: {result.error}"})
    if result.status == "timeout":
        return timed_out.model_copy(update={"result": result})
    if result.status == "unsat":
        core = conflicting_constraints(csp, deadline, checks=checks)
        return found.model_copy(update={"status": "unsat", "conflict": core, "finding": (
            "The solver proved the model has no solution. These constraints cannot all hold together; at least "
            f"one of them misstates the puzzle:\n{_listed([csp.describe(i) for i in core])}")})
    if expect_unique and result.count > 1:
        first, second = result.solutions[:2]
        differ = ", ".join(k for k in first if first[k] != second[k])
        return found.model_copy(update={"status": "ambiguous", "finding": (
            "The model is under-constrained: the puzzle has one answer but your model allows several, "
            f"e.g. {json.dumps(first)} and {json.dumps(second)} (they differ in {differ}). "
            "Keep your variables and constraints and add the facts of the puzzle that are missing.")})
    return found


def _listed(lines: list[str]) -> str:
    more = f"\n(and {len(lines) - LISTED} more)" if len(lines) > LISTED else ""
    return "\n".join(f"- {line}" for line in lines[:LISTED]) + more


def _invalid(csp: CSP, problems: list[str]) -> str:
    """The invalid constraints, then the undeclared names (with the declared name or text value meant)."""
    finding = f"These constraints are invalid:\n{_listed(problems)}"
    unknown: list[str] = []
    for problem in problems:
        unknown += [n for n in unknown_names(problem) if n not in unknown]
    return f"{finding}\n{undeclared_hint(unknown, csp.variables)}" if unknown else finding


def unknown_names(message: str) -> list[str]:
    """The undeclared names an error message of the constraint compiler names."""
    found: list[str] = []
    for part in message.split("unknown variable")[1:]:
        found += [n for n in re.findall(r"'([A-Za-z_]\w{0,63})'", part.split(";")[0]) if n not in found]
    return found


def undeclared_hint(unknown: list[str], variables: list[Variable]) -> str:
    """One line listing undeclared names, each with the declared name or text value meant when one matches but
    for case (``brown`` for ``Brown``, ``dog`` for the text value ``"dog"``)."""
    declared = {v.name.lower(): v.name for v in variables}
    texts = {str(x).lower(): x for v in variables if v.kind == "str" for x in v.values[:1000]}
    hints = []
    for name in unknown[:LISTED]:
        if name.lower() in declared:
            hints.append(f"{name} (you declared {declared[name.lower()]})")
        elif name.lower() in texts:
            hints.append(f"{name} (a text value: write it in quotes, {json.dumps(texts[name.lower()])})")
        else:
            hints.append(name)
    return (f"Undeclared names: {', '.join(hints)}. Declare each one as a variable with its domain, or use a "
            "declared name.")


def example_print(csp: CSP, problem: str) -> ExamplePrint:
    """What :func:`judge_csp` compares a model with to tell a copy of this worked example (of ``problem``)."""
    return (_variables_print(csp), frozenset(_constraint_prints(csp)), frozenset(v.name for v in csp.variables),
            problem.strip())


def _variables_print(csp: CSP) -> str:
    return json.dumps([v.model_dump(mode="json") for v in csp.variables], sort_keys=True)


def _constraint_prints(csp: CSP) -> list[str]:
    return [json.dumps(c.model_dump(mode="json", by_alias=True), sort_keys=True) for c in csp.constraints]


def _copied_example(csp: CSP, examples: list[ExamplePrint], problem: str) -> str:
    """Which worked example ``csp`` copies, for a puzzle that is not the example's own: its variables with
    constraints all taken from it, when the puzzle names none of those variables, or the example's whole model
    whatever the puzzle names (the grid examples name their cells as the puzzles' hints do). Empty when it
    copies none."""
    words = set(re.findall(r"[a-z_][a-z0-9_]*", problem.lower()))
    named = bool({v.name.lower() for v in csp.variables} & words)
    variables, constraints = _variables_print(csp), set(_constraint_prints(csp))
    for example_variables, example_constraints, names, example_problem in examples:
        if example_problem == problem.strip() or variables != example_variables:
            continue
        if constraints == example_constraints or (not named and constraints <= example_constraints):
            return f"variables {', '.join(sorted(names))}"
    return ""


def _hold_answer(csp: CSP, answer: AnswerSpec) -> tuple[CSP, list[str], str | None]:
    """``csp`` with answer domains cut to the required ones, the names cut, and what is wrong (None: nothing)."""
    declared = {v.name: v for v in csp.variables}
    missing = [name for name in answer if name not in declared]
    if missing:
        have = ", ".join(list(declared)[:30])
        return csp, [], (f"Your model lacks the answer variable(s) {', '.join(missing)}. Declare all of "
                         f"{_named(answer)} and state the puzzle's facts about them. Declared now: {have}.")
    narrowed, empty = [], []
    variables = list(csp.variables)
    for i, var in enumerate(variables):
        required = answer.get(var.name)
        if required is None:
            continue
        allowed = set(required.values)
        values = var.values
        if all(x in allowed for x in values):
            continue
        kept = [x for x in values if x in allowed]
        if not kept:
            empty.append(f"{var.name} must take values in {_domain_text(required)} (declared {_domain_text(var)})")
            continue
        contiguous = var.kind == "int" and kept == list(range(kept[0], kept[-1] + 1))
        domain = IntRange(min=kept[0], max=kept[-1]) if contiguous else kept
        variables[i] = Variable(name=var.name, domain=domain)
        narrowed.append(var.name)
    if empty:
        return csp, [], "Wrong answer domains: " + "; ".join(empty) + "."
    if narrowed:
        csp = csp.model_copy(update={"variables": variables})
    return csp, narrowed, None


def _domain_text(variable: Variable) -> str:
    values = variable.values
    if variable.kind == "int" and values == list(range(values[0], values[-1] + 1)) and len(values) > 2:
        return f"{values[0]}..{values[-1]}"
    shown = ", ".join(map(str, values[:12]))
    return f"{{{shown}{', ...' if len(values) > 12 else ''}}}"

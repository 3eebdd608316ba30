"""How :class:`~plait.solvers.Formulate` asks for a model and reads it: the formulation language, or JSON.

``language`` (the default) is the compact formulation language
(:mod:`plait.solvers._language`), decoded under its grammar: a cryptarithm
is about 100 tokens where its JSON CSP ran past 2,048. ``json`` is the
:class:`CSP` as JSON, decoded under its bounded JSON schema. Each syntax
gives the system prompt, the structured-output constraint, how a worked
example and a repair's model are written, and how a reply is read (a
reply that cannot be read becomes :class:`Unreadable`, its message the
finding sent back, with the line and column or JSON path of the problem).
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import ValidationError

from plait._json import find_json, problem_lines
from plait.errors import ConfigError, FormulationError
from plait.executors import Constraint, Grammar, JsonSchema
from plait.solvers._formulate_check import undeclared_hint, unknown_names
from plait.solvers._language import format_formulation, parse_formulation
from plait.solvers._language_examples import FormulationExample
from plait.solvers._language_grammar import FORMULATION_GRAMMAR
from plait.solvers._model import CSP
from plait.solvers._prompts import FORMULATE_SYSTEM, LANGUAGE_SYSTEM, FewShot

__all__ = ["Syntax", "SyntaxName", "Unreadable", "syntax_named", "MAX_STRING", "TOKENS_PER_ITEM"]

SyntaxName = Literal["language", "json"]
MAX_STRING = 240
"""Longest string (a name, an expression) a JSON formulation may write."""
TOKENS_PER_ITEM = 40
"""A list (variables, constraints, domain values, table rows) in a JSON formulation holds at most
``max_tokens // TOKENS_PER_ITEM`` entries (51 at the default 2,048): a variable or constraint object costs 20
to 35 tokens (35: a variable with 10-digit bounds), so a model repeating one is stopped by the schema before
``max_tokens`` is. Integers are bounded by ``plait.executors._schema_bounds.MAX_INTEGER`` (a model wrote
``"value": 27000...0`` to the token limit)."""


class Unreadable(Exception):
    """A reply that is not a model in the syntax asked for; the message says where and what is wrong."""


class Syntax:
    """The JSON syntax; :class:`_Language` overrides what differs."""

    name: SyntaxName = "json"
    system = FORMULATE_SYSTEM
    shorter = "ranges instead of value lists, all_different instead of pairwise constraints, no spaces"
    """How to write a model in fewer tokens, for the finding on a reply cut at the token limit."""

    def constraint(self, max_tokens: int) -> Constraint:
        return JsonSchema.of(CSP, max_string=MAX_STRING, max_items=max(8, max_tokens // TOKENS_PER_ITEM))

    def format(self, csp: CSP) -> str:
        return json.dumps(csp.model_dump(mode="json", by_alias=True, exclude_none=True))

    def salvage(self, text: str) -> str | None:
        """What can still be read of a reply cut at the token limit (None: nothing; cut JSON never parses)."""
        return None

    def parse(self, text: str) -> CSP:
        try:
            return CSP.model_validate_json(find_json(text, "{") or text)
        except ValidationError as exc:
            raise Unreadable(f"Your JSON does not fit the CSP schema: {'; '.join(problem_lines(exc, 'model'))}.") \
                from None

    def example(self, example: FewShot | FormulationExample) -> tuple[str, CSP, str]:
        """A worked example's puzzle, model and text as this syntax writes it."""
        if isinstance(example, FewShot):
            return example.problem, example.model, self.format(example.model)
        csp = parse_formulation(example.formulation)
        return example.problem, csp, self.format(csp)


class _Language(Syntax):
    name: SyntaxName = "language"
    system = LANGUAGE_SYSTEM
    shorter = ("one declaration line per group of variables with a range, alldifferent(...) instead of pairwise "
               "!= lines, no comments, each fact once")

    def constraint(self, max_tokens: int) -> Constraint:
        return Grammar(grammar=FORMULATION_GRAMMAR)

    def format(self, csp: CSP) -> str:
        return format_formulation(csp)

    def salvage(self, text: str) -> str | None:
        """The complete lines of a cut reply, each once: greedy small models loop on a line until the limit
        (measured: ``alldifferent(S,T,W,Q,E,N,B)`` forty times), and what came before the loop is often a model."""
        seen: set[str] = set()
        kept = []
        for line in text.split("\n")[:-1]:  # the last line is the one the limit cut
            if line.strip() not in seen:
                seen.add(line.strip())
                kept.append(line)
        return "\n".join(kept) if "".join(kept).strip() else None

    def parse(self, text: str) -> CSP:
        body = text.strip()
        if body.startswith("```"):  # a fenced reply (a backend without grammars)
            body = body.split("\n", 1)[1] if "\n" in body else ""
            body = body.rsplit("```", 1)[0]
        try:
            return parse_formulation(body)
        except FormulationError as exc:
            raise Unreadable(f"Your model could not be read: {exc}{_all_undeclared(body, exc)}") from None

    def example(self, example: FewShot | FormulationExample) -> tuple[str, CSP, str]:
        if isinstance(example, FewShot):
            return super().example(example)
        return example.problem, parse_formulation(example.formulation), example.formulation  # comments kept


def _all_undeclared(text: str, error: FormulationError) -> str:
    """A line naming the undeclared names the error lists, each with the declared name or text value meant when
    one matches but for case (the declared variables are read from the text without the failing lines).
    Empty when the error names no undeclared name."""
    unknown = unknown_names(str(error))
    if not unknown:
        return ""
    failing = {int(m.group(1)) for p in error.problems if (m := re.match(r"line (\d+),", p))}
    lines = [("" if number in failing else line) for number, line in enumerate(text.split("\n"), 1)]
    try:
        variables = parse_formulation("\n".join(lines)).variables
    except FormulationError:
        variables = []
    return "\n" + undeclared_hint(unknown, variables)


_SYNTAXES: dict[str, Syntax] = {"language": _Language(), "json": Syntax()}


def syntax_named(name: str) -> Syntax:
    if name not in _SYNTAXES:
        raise ConfigError(f"Formulate syntax must be 'language' (the compact formulation language) or 'json', "
                          f"got {name!r}")
    return _SYNTAXES[name]

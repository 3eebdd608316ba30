"""Prompts for turning natural-language puzzles into CSP models, with few-shot examples.

The examples are worked translations; :class:`Formulate` sends them as chat
turns before the user's puzzle. Pass your own ``examples`` to specialise.
A repair prompt is the first prompt plus, at most, one model (the model's
latest, formatted from the parsed CSP, never a cut-off reply) and one
finding: its length does not grow with the rounds, and every round shares
the first prompt as a cached prefix.
"""

from __future__ import annotations

from pydantic import BaseModel

from plait.executors import Message
from plait.solvers._model import CSP

__all__ = ["FewShot", "FEW_SHOT", "FORMULATE_SYSTEM", "LANGUAGE_SYSTEM", "formulate_messages", "repair_messages",
           "EXPLAIN_SYSTEM"]

FORMULATE_SYSTEM = """\
You translate puzzles into finite-domain constraint satisfaction problems (CSP) for a solver.
Reply with one JSON object: {"variables": [...], "constraints": [...]}.
- A variable is {"name": identifier, "domain": {"min": int, "max": int} or a list of ints or a list of strings}.
- Constraint kinds: {"kind": "all_different", "variables": [...]};
  {"kind": "compare", "left": expr, "op": "==|!=|<|<=|>|>=", "right": expr};
  {"kind": "expression", "expression": condition} (or just the condition as a string);
  {"kind": "sum", "variables": [...], "weights": [...] (optional), "op": "==", "value": int};
  {"kind": "table", "variables": [...], "rows": [[...], ...], "forbidden": false};
  {"kind": "implies", "if": condition, "then": condition}; {"kind": "any_of", "conditions": [...]}.
- Expressions use only variable names, integers, + - * // % abs() min() max() sum(), comparisons,
  and/or/not; text values only with == and !=. Nothing else is allowed.
- Encode every fact of the puzzle, so that exactly one solution remains when the puzzle says so.
"""

LANGUAGE_SYSTEM = """\
You translate puzzles into finite-domain constraint models for a solver, in a compact language.
Write one statement per line:
- declare variables with a range or a set of values: A B C in 1..9 / Color in {"red","blue"};
- alldifferent(A,B,C), also over expressions: alldifferent(Q1+1,Q2+2,Q3+3);
- sum(A,2*B,C) <= 10; (A,B) in {(1,2),(2,3)} or (A,B) not in {...};
- A < 12 -> D > A (if-then); any(A == 1,B == 2) (at least one holds);
- any other line is a condition over variable names and integers: + - * // % abs() min() max(), comparisons,
  and/or/not; text values in double quotes ("red") only with == and !=;
- # starts a comment.
Declare every name you use. Encode every fact of the puzzle, so that exactly one solution remains when the
puzzle says so. Write no spaces you do not need.
"""

EXPLAIN_SYSTEM = """\
You explain the solution of a puzzle in plain words. The solution below was found and checked by a
constraint solver: state it faithfully, answer the question asked, and keep it short.
"""


class FewShot(BaseModel):
    """One worked example: a puzzle and its CSP model (a :class:`CSP`, or a dict that validates as one)."""

    problem: str
    model: CSP


FEW_SHOT: list[FewShot] = [
    FewShot(
        problem=(
            "Ann, Bob and Cid live in houses 1, 2 and 3 (one each). Ann does not live in house 1. "
            "Bob lives directly left of Cid. Who lives where?"
        ),
        model=CSP.model_validate({
            "variables": [{"name": n, "domain": {"min": 1, "max": 3}} for n in ("Ann", "Bob", "Cid")],
            "constraints": [
                {"kind": "all_different", "variables": ["Ann", "Bob", "Cid"]},
                "Ann != 1",
                {"kind": "compare", "left": "Bob + 1", "op": "==", "right": "Cid"},
            ],
        }),
    ),
    FewShot(
        problem=(
            "Pick a start hour from 9 to 16 for a review (1 hour) and a demo (2 hours). They must not overlap, "
            "the demo ends by 17, and if the review is in the morning (before 12) the demo is after it. "
            "Pack them as early as possible: the review starts at 9 and the demo right after it."
        ),
        model=CSP.model_validate({
            "variables": [{"name": "Review", "domain": {"min": 9, "max": 16}},
                          {"name": "Demo", "domain": {"min": 9, "max": 16}}],
            "constraints": [
                {"kind": "any_of", "conditions": ["Review + 1 <= Demo", "Demo + 2 <= Review"]},
                "Demo + 2 <= 17",
                {"kind": "implies", "if": "Review < 12", "then": "Demo > Review"},
                "Review == 9",
                "Demo == Review + 1",
            ],
        }),
    ),
]


REPAIR_TAIL = ("Reply with the whole corrected model. Edit the model above: keep every variable and constraint "
               "that is right and change only what the finding points at.")
"""Ends every repair message: an edit of the shown model, not a new one."""


def formulate_messages(problem: str, examples: list[tuple[str, str]], answer_hint: str = "",
                       system: str = FORMULATE_SYSTEM) -> list[Message]:
    """System prompt, the worked examples (puzzle, model as text) as chat turns, then the puzzle (and which
    variables must answer it)."""
    messages = [Message(role="system", content=system)]
    for example_problem, model in examples:
        messages.append(Message(role="user", content=example_problem))
        messages.append(Message(role="assistant", content=model))
    messages.append(Message(role="user", content=f"{problem}\n\n{answer_hint}" if answer_hint else problem))
    return messages


def repair_messages(first: list[Message], shown: str | None, feedback: str) -> list[Message]:
    """The first prompt, the model's latest model ``shown`` (None: there is none to show) and the ``feedback``.

    Without a model to show, the feedback is added to the puzzle's turn (two user turns in a row confuse
    chat templates)."""
    if shown is None:
        last = first[-1]
        return [*first[:-1], Message(role="user", content=f"{last.content}\n\n{feedback}")]
    return [*first, Message(role="assistant", content=shown), Message(role="user", content=f"{feedback}\n{REPAIR_TAIL}")]

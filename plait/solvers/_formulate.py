"""LLM to CSP with repair (Logic-LM style), and turning a solution back into prose.

:class:`Formulate` asks the model for a :class:`CSP` as JSON (the request
carries the model's JSON schema as a structured-output constraint), solves it,
and on failure re-asks with the precise error, for at most ``max_rounds``:

* JSON that does not fit the schema: the validation errors;
* constraints outside the safe language or naming unknown variables: each
  offending constraint and what is wrong with it;
* unsatisfiable: a minimal set of constraints that cannot hold together;
* several solutions where one is wanted: "under-constrained", with two of them.

Every round is recorded with ``ctx.emit("formulate_round", ...)``. A reply is
judged in a worker thread under one deadline of ``time_limit`` seconds
(parsing, compiling, solving and finding the conflicting constraints), so a
hostile model cannot keep a round running longer; an over-long reply (more
than ``MAX_REPLY_CHARS``) is refused unread.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from plait._json import find_json, problem_lines
from plait.errors import ConfigError
from plait.executors import Completion, JsonSchema, Message, Request, SamplingParams
from plait.executors._reask import ask_until_usable, reask_request
from plait.orchestrator import FormulationChecked, Node, RunContext
from plait.solvers._bridge import CSPResult, in_worker, search
from plait.solvers._compile import compile_checks
from plait.solvers._core import conflicting_constraints
from plait.solvers._deadline import Deadline, Stopped
from plait.solvers._model import CSP
from plait.solvers._prompts import EXPLAIN_SYSTEM, FEW_SHOT, FewShot, formulate_messages

__all__ = ["Formulation", "Formulate", "Explain"]

MAX_STRING = 240
"""Longest string (a name, an expression) a constrained formulation may write."""
MAX_REPLY_CHARS = 1_000_000
"""Longest reply that is parsed at all (a 2,048-token formulation is about 10,000 characters)."""
_LISTED = 20
"""Most invalid constraints listed in one repair message."""
TOKENS_PER_ITEM = 40
"""A list (variables, constraints, domain values, table rows) in a constrained formulation holds at most
``max_tokens // TOKENS_PER_ITEM`` entries (51 at the default 2,048): a variable or constraint object costs 20
to 35 tokens (35: a variable with 10-digit bounds), so a model repeating one is stopped by the schema before
``max_tokens`` is. Integers are bounded by ``plait.executors._schema_bounds.MAX_INTEGER`` (a model wrote
``"value": 27000...0`` to the token limit)."""

FormulationStatus = Literal["solved", "invalid", "unsat", "ambiguous", "timeout"]


class Formulation(BaseModel):
    """The result of :class:`Formulate`: the last model, its solve result, and the repair history."""

    problem: str
    status: FormulationStatus
    csp: CSP | None = None
    result: CSPResult | None = None
    rounds: int = 0
    feedback: list[str] = []

    @property
    def solution(self) -> dict[str, Any] | None:
        return self.result.solution if self.result else None


class Formulate(Node):
    """Natural-language puzzle in, solved :class:`Formulation` out, repairing the model's CSP on solver errors.

    ``expect_unique``: the puzzle has one answer, so a second solution means
    the model left a fact out. ``time_limit`` bounds the solver's work on each
    reply (a round ends ``timeout`` when it passes). ``sampling`` is the base
    :class:`SamplingParams` (the JSON-schema constraint is added to it).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        max_rounds: int = 3,
        expect_unique: bool = True,
        time_limit: float = 10.0,
        examples: list[FewShot] | None = None,
        sampling: SamplingParams | None = None,
        **policy: Any,
    ):
        super().__init__(name or "formulate", **policy)
        if max_rounds < 1:
            raise ConfigError(f"Formulate max_rounds must be >= 1, got {max_rounds}")
        self.max_rounds = max_rounds
        self.expect_unique = expect_unique
        self.time_limit = time_limit
        self.examples = FEW_SHOT if examples is None else examples
        base = sampling or SamplingParams(max_tokens=2048)
        max_items = max(8, base.max_tokens // TOKENS_PER_ITEM)
        constraint = JsonSchema.of(CSP, max_string=MAX_STRING, max_items=max_items)  # nothing can grow without end
        self.sampling = base.model_copy(update={"constraint": constraint})

    async def run(self, problem: str, ctx: RunContext) -> Formulation:
        feedback: list[str] = []  # the error sent back after each rejected round

        async def judge(request: Request, completion: Completion, round_no: int) -> tuple[Formulation, str | None]:
            formulation, error = await self._check(problem, completion.text, round_no)
            if error is not None and completion.samples[0].finish_reason == "length":
                error = f"Your reply was cut off at the token limit; write a more compact model. {error}"
            ctx.emit("formulate_round", round=round_no, status=formulation.status, error=error)
            ctx.emit(FormulationChecked, round=round_no, status=formulation.status, finding=error,
                     csp=formulation.csp.model_dump() if formulation.csp else None,
                     solutions=formulation.result.solutions[:2] if formulation.result else [],
                     count=formulation.result.count if formulation.result else 0)
            if error is not None:
                feedback.append(error)
            return formulation, error

        request = Request(prompt=tuple(formulate_messages(problem, self.examples)), params=self.sampling)
        reply = await ask_until_usable(
            ctx, request, judge, rounds=self.max_rounds,
            follow_up=lambda request, raw, error: reask_request(
                request, raw, error + "\nReply with the whole corrected JSON model."))
        return reply.value.model_copy(update={"feedback": feedback})

    async def _check(self, problem: str, text: str, round_no: int) -> tuple[Formulation, str | None]:
        """Parse and solve one reply off the event loop; the error to send back, or None when it is acceptable."""
        return await in_worker(lambda stop: self._judge(problem, text, round_no, Deadline(self.time_limit, stop)))

    def _judge(self, problem: str, text: str, round_no: int, deadline: Deadline) -> tuple[Formulation, str | None]:
        base: dict[str, Any] = {"problem": problem, "rounds": round_no}
        if len(text) > MAX_REPLY_CHARS:
            return Formulation(status="invalid", **base), (
                f"Your reply is {len(text)} characters long; the limit is {MAX_REPLY_CHARS}. Write a compact model.")
        try:
            csp = CSP.model_validate_json(find_json(text, "{") or text)
        except ValidationError as exc:
            lines = "; ".join(problem_lines(exc, "model"))
            return Formulation(status="invalid", **base), f"Your JSON does not fit the CSP schema: {lines}."
        timed_out = Formulation(csp=csp, status="timeout", **base), (
            f"The solver found no solution within {self.time_limit:g}s. Use smaller domains or tighter "
            "constraints that state the puzzle's facts directly.")
        try:
            checks, problems = compile_checks(csp, deadline)
        except Stopped:
            return timed_out
        if problems:
            listed = "\n".join(f"- {p}" for p in problems[:_LISTED])
            more = f"\n(and {len(problems) - _LISTED} more)" if len(problems) > _LISTED else ""
            return Formulation(status="invalid", csp=csp, **base), f"These constraints are invalid:\n{listed}{more}"
        result = search(csp, checks, deadline, mode="all" if self.expect_unique else "one", max_solutions=2)
        found = Formulation(csp=csp, result=result, status="solved", **base)
        if result.status == "invalid":
            return found.model_copy(update={"status": "invalid"}), f"The model could not be solved: {result.error}"
        if result.status == "timeout":
            return found.model_copy(update={"status": "timeout"}), timed_out[1]
        if result.status == "unsat":
            core = conflicting_constraints(csp, deadline, checks=checks)
            listed = "\n".join(f"- {csp.describe(i)}" for i in core[:_LISTED])
            more = f"\n(and {len(core) - _LISTED} more)" if len(core) > _LISTED else ""
            return found.model_copy(update={"status": "unsat"}), (
                "The solver proved the model has no solution. These constraints cannot all hold together; "
                f"at least one of them misstates the puzzle:\n{listed}{more}")
        if self.expect_unique and result.count > 1:
            first, second = result.solutions[:2]
            differ = ", ".join(k for k in first if first[k] != second[k])
            return found.model_copy(update={"status": "ambiguous"}), (
                "The model is under-constrained: the puzzle has one answer but your model allows several, "
                f"e.g. {json.dumps(first)} and {json.dumps(second)} (they differ in {differ}). "
                "Add the facts of the puzzle that are missing.")
        return found, None


class Explain(Node):
    """Turn a :class:`Formulation` (problem and checked solution) into a short prose answer.

    When the formulation was not solved (no solution, or several where one was
    wanted) it says so without calling the model.
    """

    def __init__(self, name: str | None = None, *, sampling: SamplingParams | None = None, **policy: Any):
        super().__init__(name or "explain", **policy)
        self.sampling = sampling or SamplingParams(max_tokens=256)

    async def run(self, formulation: Formulation, ctx: RunContext) -> str:
        if formulation.status != "solved" or formulation.solution is None:
            last = formulation.feedback[-1] if formulation.feedback else "no model was produced"
            return f"No checked solution ({formulation.status} after {formulation.rounds} round(s)): {last}"
        messages = (
            Message(role="system", content=EXPLAIN_SYSTEM),
            Message(role="user", content=f"Puzzle:\n{formulation.problem}\n\nSolution (variable: value):\n"
                                         f"{json.dumps(formulation.solution, indent=1)}"),
        )
        completion = await ctx.generate(Request(prompt=messages, params=self.sampling))
        return completion.text.strip()

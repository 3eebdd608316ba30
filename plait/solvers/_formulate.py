"""LLM to CSP with repair (Logic-LM style) and a formalization vote, and turning a solution back into prose.

:class:`Formulate` asks the model for a :class:`CSP`, in the compact formulation
language under its grammar or as JSON under its schema (:mod:`plait.solvers._formulate_syntax`), solves it,
and on failure re-asks with the precise finding, for at most ``max_rounds``
replies per formulation (:mod:`plait.solvers._formulate_check` says what is
found, :mod:`plait.solvers._formulate_repair` how a repair is asked).
``k > 1`` draws k formulations in one ``n=k`` request and votes over their
solutions' answer variables (:mod:`plait.solvers._formulate_vote`): a wrong
translation that happens to have one solution is outvoted instead of accepted.

Every round is kept in :attr:`Formulation.rounds` and emitted as a
:class:`~plait.orchestrator.FormulationChecked` event (and a
``formulate_round`` custom event). A reply is judged in a worker thread under
one deadline of ``time_limit`` seconds (parsing, compiling, solving and
finding the conflicting constraints), so a hostile model cannot keep a round
running longer; an over-long reply (more than ``MAX_REPLY_CHARS``) is refused
unread.

``budget=`` tokens bound every call (the k first replies, every repair): each
is cut to what is left, and when none fits the formulation ends with the
rounds it has (``stopped="budget"``; a vote is decided over the chains that
ended).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from plait.errors import ConfigError
from plait.executors import Message, Request, SamplingParams
from plait.orchestrator import Node, RunContext
from plait.planners._aggregators import Aggregator, EarlyStop
from plait.planners._budget_split import Spending, check_budget, first_call_fits
from plait.solvers._bridge import CSPResult
from plait.solvers._engines import check_engine
from plait.solvers._formulate_check import (
    MAX_REPLY_CHARS, FormulationRound, answer_hint, answer_spec, example_print)
from plait.solvers._formulate_syntax import SyntaxName, syntax_named
from plait.solvers._formulate_vote import run_chains
from plait.solvers._language_examples import FORMULATION_EXAMPLES, FormulationExample
from plait.solvers._model import CSP
from plait.solvers._prompts import EXPLAIN_SYSTEM, FEW_SHOT, FewShot, formulate_messages

__all__ = ["Formulation", "FormulationRound", "Formulate", "Explain", "MAX_REPLY_CHARS"]

FormulationStatus = Literal["solved", "invalid", "unsat", "ambiguous", "timeout"]


class Formulation(BaseModel):
    """The result of :class:`Formulate`: the model that speaks for the result, its solve, and every round.

    ``answer``: the answer variables' values (every variable's without ``answer=``) when solved.
    ``confidence``: with ``k > 1``, the share of the vote the answer won (None without a vote);
    ``votes``: each answer's weight. ``rounds``: every formulation the model wrote, in order, with the
    finding sent back on it.
    """

    problem: str
    status: FormulationStatus
    csp: CSP | None = None
    result: CSPResult | None = None
    answer: dict[str, int | str] | None = None
    confidence: float | None = None
    votes: dict[str, float] = {}
    rounds: list[FormulationRound] = []
    stopped: Literal["done", "budget"] = "done"  # "budget": the node's budget cut repairs or waves short

    @property
    def solution(self) -> dict[str, Any] | None:
        return self.result.solution if self.result else None

    @property
    def feedback(self) -> list[str]:
        """The findings sent back to the model, in order."""
        return [r.finding for r in self.rounds if r.finding is not None and r.status != "repeat"]


class Formulate(Node):
    """Natural-language puzzle in, solved :class:`Formulation` out, repairing the model's CSP on solver findings.

    * ``answer``: the variables that answer the puzzle, a list of names or names to domains
      (``{"S": range(10)}``); the prompt names them, and a model lacking one (or copying a worked example)
      is repaired, never ``solved``; a declared domain wider than the one given is cut to it;
    * ``k``: formulations drawn in one ``n=k`` request and voted by answer (``aggregate``, default
      :class:`~plait.planners.EarlyStop` over all k: repairs stop once no answer can overtake the leader);
      sampled at ``resample_temperature`` when ``sampling`` is greedy;
    * ``expect_unique``: the puzzle has one answer, so a second solution means the model left a fact out;
    * ``max_rounds``: replies judged per formulation (a repeat re-sampled at ``resample_temperature`` counts);
    * ``time_limit``: the solver's work on each reply (a round ends ``timeout`` when it passes);
    * ``engine``: the solver engine for each model (see :class:`SolveCSP`): ``"python-constraint"`` (default), or
      ``"auto"``, which takes CP-SAT or z3 for large or arithmetic-heavy models when installed;
    * ``syntax``: how the model writes its model: ``"language"``, the compact formulation language decoded
      under its grammar (default; worked examples :data:`~plait.solvers.FORMULATION_EXAMPLES`), or
      ``"json"``, the :class:`CSP` as JSON under its bounded schema (examples :data:`~plait.solvers.FEW_SHOT`);
      ``examples`` takes :class:`FewShot` (written in either syntax) and :class:`FormulationExample` items;
    * ``sampling``: the base :class:`SamplingParams` (default ``max_tokens`` 1,024 for the language, 2,048 for
      JSON); the syntax's constraint is added to it;
    * ``budget``: tokens for every call, first replies and repairs (see the module docstring).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        max_rounds: int = 3,
        expect_unique: bool = True,
        time_limit: float = 10.0,
        examples: list[FewShot | FormulationExample] | None = None,
        sampling: SamplingParams | None = None,
        syntax: SyntaxName = "language",
        k: int = 1,
        answer: list[str] | dict[str, Any] | None = None,
        aggregate: Aggregator | None = None,
        resample_temperature: float = 0.7,
        engine: str = "python-constraint",
        budget: int | None = None,
        **policy: Any,
    ):
        super().__init__(name or "formulate", **policy)
        self.budget = check_budget(f"Formulate {self.name!r}", budget)
        if max_rounds < 1:
            raise ConfigError(f"Formulate max_rounds must be >= 1, got {max_rounds}")
        if k < 1:
            raise ConfigError(f"Formulate k must be >= 1 formulation, got {k}")
        if resample_temperature <= 0:
            raise ConfigError(f"Formulate resample_temperature must be > 0 (a greedy re-sample repeats itself), "
                              f"got {resample_temperature}")
        check_engine(engine)
        self.engine = engine
        self.max_rounds = max_rounds
        self.expect_unique = expect_unique
        self.time_limit = time_limit
        self.syntax = syntax_named(syntax)
        if examples is None:
            examples = list(FORMULATION_EXAMPLES) if syntax == "language" else list(FEW_SHOT)
        self.examples = examples
        worked = [self.syntax.example(ex) for ex in examples]  # (puzzle, CSP, text as this syntax writes it)
        self.example_turns = [(puzzle, text) for puzzle, _, text in worked]
        self.example_prints = [example_print(csp, puzzle) for puzzle, csp, _ in worked]
        self.k = k
        self.answer = answer_spec(answer)
        self.aggregate = aggregate or EarlyStop(wave=k)
        if self.aggregate.quorum > k:
            raise ConfigError(f"Formulate aggregate quorum {self.aggregate.quorum} can never be met with k={k}")
        self.resample_temperature = resample_temperature
        base = sampling or SamplingParams(max_tokens=1024 if syntax == "language" else 2048)
        constraint = self.syntax.constraint(base.max_tokens)  # bounded: nothing can grow without end
        self.sampling = base.model_copy(update={"constraint": constraint})

    async def run(self, problem: str, ctx: RunContext) -> Formulation:
        first = formulate_messages(problem, self.example_turns, answer_hint(self.answer), self.syntax.system)
        wave = self.sampling.model_copy(update={"n": min(self.aggregate.wave or self.k, self.k)})
        first_call_fits(f"Formulate {self.name!r}", self.budget, ctx, Request(prompt=tuple(first), params=wave))
        outcome = await run_chains(self, Spending(ctx, limit=self.budget), problem, first)
        chain, verdict = outcome.chain, outcome.chain.verdict
        status = verdict.status if verdict is not None and verdict.status != "repeat" else "invalid"
        if status == "solved" and outcome.below_quorum:
            status = "ambiguous"
        return Formulation(problem=problem, status=status, csp=verdict.csp if verdict else None,
                           result=verdict.result if verdict else None, answer=chain.answer(),
                           confidence=outcome.confidence, votes=outcome.votes, rounds=outcome.tally.rounds,
                           stopped="budget" if outcome.tally.spent else "done")


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
            return f"No checked solution ({formulation.status} after {len(formulation.rounds)} round(s)): {last}"
        messages = (
            Message(role="system", content=EXPLAIN_SYSTEM),
            Message(role="user", content=f"Puzzle:\n{formulation.problem}\n\nSolution (variable: value):\n"
                                         f"{json.dumps(formulation.solution, indent=1)}"),
        )
        completion = await ctx.generate(Request(prompt=messages, params=self.sampling))
        return completion.text.strip()

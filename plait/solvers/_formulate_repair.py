"""One formulation's repair loop: each round shows the model its latest model and the solver's finding on it.

A :class:`Chain` is one of :class:`~plait.solvers.Formulate`'s k formulations. Its first reply comes from the
shared ``n=k`` request; :meth:`Chain.repair` then re-asks (through the one re-ask loop,
:func:`~plait.executors._reask.ask_until_usable`) until it is solved or its rounds are spent. What makes a
repair change something (measured: 42 of 69 greedy re-asks repeated the previous reply byte for byte):

* the repair prompt is the first prompt plus the latest model, formatted from the parsed CSP (a reply cut
  at the token limit is never shown, nor carried into later prompts), and the finding on it;
* a reply that repeats an earlier one of the chain, as text or as CSP, is not judged again: the same request
  is re-sampled at ``resample_temperature`` with a seed of its own;
* a repair that drops half or more of the variables it had declared, or an answer variable, is read as an
  edit: the dropped variables and their constraints are kept from the model before (``restored``).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from plait.errors import BudgetExceededError, ConstraintSyntaxError
from plait.executors import Message, Request, Sample
from plait.executors._reask import ask_until_usable
from plait.orchestrator import FormulationChecked, RunContext
from plait.planners._budget_split import owned, within_budget
from plait.solvers._bridge import in_worker
from plait.solvers._compile import Scope, compile_constraint
from plait.solvers._deadline import Deadline, Stopped
from plait.solvers._formulate_check import MAX_REPLY_CHARS, AnswerSpec, FormulationRound, fingerprint, judge_csp
from plait.solvers._formulate_syntax import Unreadable
from plait.solvers._model import CSP
from plait.solvers._prompts import repair_messages

if TYPE_CHECKING:
    from plait.solvers._formulate import Formulate

__all__ = ["Chain", "Tally", "restore_dropped"]

MAX_SHOWN_RAW = 8_000
"""Longest reply that did not parse still shown back to the model (so that its error's position means
something); a longer one is not shown."""


class Tally:
    """What all chains of one ``Formulate`` run share: every round in order, and the tokens spent."""

    def __init__(self) -> None:
        self.rounds: list[FormulationRound] = []
        self.tokens = 0
        self.spent = False  # the node's budget ended a chain's repairs or the vote's waves


class Chain:
    """One formulation and its repairs: its rounds, the replies it has seen, the model it shows next."""

    def __init__(self, node: Formulate, problem: str, first: list[Message], sample: int, tally: Tally):
        self.node, self.problem, self.first, self.sample, self.tally = node, problem, first, sample, tally
        self.rounds: list[FormulationRound] = []
        self.request: Request | None = None  # the request that drew the latest reply
        self._texts: dict[str, int] = {}  # digest of a reply's text -> the round that first wrote it
        self._prints: dict[str, int] = {}  # model fingerprint -> the round that first wrote it
        self._raw = ""  # the latest reply, shown back only when it did not parse

    @property
    def solved(self) -> bool:
        return bool(self.rounds) and self.rounds[-1].status == "solved"

    @property
    def verdict(self) -> FormulationRound | None:
        """The latest round that was judged (a repeat's verdict is its original's)."""
        return next((r for r in reversed(self.rounds) if r.status != "repeat"), None)

    def answer(self) -> dict[str, Any] | None:
        """The answer variables' values (all variables' without ``answer=``), once solved."""
        verdict = self.verdict
        if not self.solved or verdict is None or verdict.result is None or verdict.result.solution is None:
            return None
        solution = verdict.result.solution
        return {name: solution[name] for name in self.node.answer} if self.node.answer else dict(solution)

    async def take(self, ctx: RunContext, request: Request, sample: Sample) -> FormulationRound:
        """Judge one reply as this chain's next round (off the event loop, under ``time_limit``), record it."""
        self.request = request
        number = len(self.rounds) + 1
        base = {"sample": self.sample, "round": number, "temperature": request.params.temperature,
                "completion_tokens": sample.completion_tokens}
        text = sample.text.strip()
        digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
        if digest in self._texts:
            found = self._repeat(self._texts[digest], base)
        else:
            self._texts[digest] = number
            cut_at = (sample.completion_tokens or request.params.max_tokens) if sample.finish_reason == "length" \
                else None
            found = await in_worker(lambda stop: self._judge(text, cut_at, base, Deadline(self.node.time_limit, stop)))
        if found.csp is None and not found.truncated and found.status == "invalid":
            self._raw = text
        self.rounds.append(found)
        self.tally.rounds.append(found)
        _emit(ctx, found)
        return found

    async def repair(self, ctx: RunContext) -> None:
        """Re-ask until solved, ``max_rounds`` replies were judged, or the node's budget has no room for another."""
        left = self.node.max_rounds - len(self.rounds)
        if self.solved or left < 1 or not self.rounds:
            return

        async def judge(request: Request, completion: Any, call: int) -> tuple[FormulationRound, str | None]:
            self.tally.tokens += completion.total_tokens
            found = await self.take(ctx, request, completion.samples[0])
            return found, None if found.status == "solved" else (found.finding or found.status)

        try:  # inside Formulate(budget=): each repair cut to what is left; none sent when nothing is
            await ask_until_usable(ctx, self.next_request(), judge, rounds=left, before=within_budget(ctx),
                                   follow_up=lambda request, raw, problem: self.next_request())
        except BudgetExceededError as exc:
            if not owned(ctx, exc):
                raise
            self.tally.spent = True  # the chain ends unsolved with the rounds it has

    def next_request(self) -> Request:
        """The same request re-sampled after a repeat; else the first prompt, the latest model and the finding."""
        assert self.request is not None and self.rounds
        last, base = self.rounds[-1], self.node.sampling.model_copy(update={"n": 1})
        if last.status == "repeat":
            seed = (base.seed or 0) + 1000 * last.round + self.sample
            params = base.model_copy(update={"seed": seed,
                                             "temperature": max(base.temperature, self.node.resample_temperature)})
            return self.request.model_copy(update={"params": params})
        feedback = last.finding or ""
        shown = self._shown()
        if last.truncated and shown is not None and shown is not last and shown.finding:
            feedback += f"\nThe model above is your latest complete one. {shown.finding}"
        text = self.node.syntax.format(shown.csp) if shown is not None and shown.csp is not None else None
        if last.csp is None and not last.truncated and self._raw and len(self._raw) <= MAX_SHOWN_RAW:
            text = self._raw  # the error's position points into it
        prompt = tuple(repair_messages(self.first, text, feedback))
        return Request(prompt=prompt, params=base)

    def _shown(self) -> FormulationRound | None:
        """The latest round with a model worth showing (not a copy of a worked example)."""
        return next((r for r in reversed(self.rounds) if r.csp is not None and r.status != "repeat" and not r.copied),
                    None)

    def _repeat(self, of: int, base: dict[str, Any]) -> FormulationRound:
        original = self.rounds[of - 1]
        return FormulationRound(status="repeat", repeat_of=of, csp=original.csp, **base)

    def _judge(self, text: str, cut_at: int | None, base: dict[str, Any], deadline: Deadline) -> FormulationRound:
        """In the worker thread: parse, restore what a repair dropped, refuse a repeated model, judge."""
        if cut_at is not None:
            cut = (f"Your reply was cut at {cut_at} tokens, the limit, before the model was complete; write it "
                   f"shorter ({self.node.syntax.shorter}).")
            salvaged = self.node.syntax.salvage(text)
            if salvaged is None:
                return FormulationRound(status="invalid", truncated=True, **base, finding=cut)
            found = self._judge(salvaged, None, base, deadline)
            if found.status in ("solved", "repeat"):
                return found.model_copy(update={"truncated": True})
            return found.model_copy(update={"truncated": True, "finding": (
                f"{cut} Its complete lines, each once, were read: {found.finding}")})
        if len(text) > MAX_REPLY_CHARS:
            return FormulationRound(status="invalid", **base, finding=(
                f"Your reply is {len(text)} characters long; the limit is {MAX_REPLY_CHARS}. Write a compact model."))
        try:
            csp = self.node.syntax.parse(text)
        except Unreadable as exc:
            return FormulationRound(status="invalid", **base, finding=str(exc))
        shown = self._shown()
        csp, restored = restore_dropped(shown.csp if shown else None, csp, self.node.answer, deadline)
        print_ = fingerprint(csp)
        if print_ in self._prints:
            return self._repeat(self._prints[print_], base)
        self._prints[print_] = base["round"]
        found = judge_csp(csp, base=base, answer=self.node.answer, expect_unique=self.node.expect_unique,
                          examples=self.node.example_prints, problem=self.problem, deadline=deadline,
                          engine=self.node.engine)
        return found.model_copy(update={"restored": restored})


def restore_dropped(previous: CSP | None, csp: CSP, answer: AnswerSpec, deadline: Deadline) -> tuple[CSP, list[str]]:
    """``csp`` with the variables it dropped from ``previous`` (and the constraints over them) put back, when it
    dropped half or more of them or an answer variable; and the names put back."""
    if previous is None:
        return csp, []
    names = {v.name for v in csp.variables}
    dropped = [v for v in previous.variables if v.name not in names]
    if not dropped or (2 * len(dropped) < len(previous.variables) and not any(v.name in answer for v in dropped)):
        return csp, []
    gone = {v.name for v in dropped}
    have = {json.dumps(c.model_dump(mode="json", by_alias=True), sort_keys=True) for c in csp.constraints}
    scope, kept = Scope(previous), []
    try:
        for i, c in enumerate(previous.constraints):
            deadline.check()
            try:
                over = compile_constraint(previous, i, scope).variables
            except ConstraintSyntaxError:
                continue  # an invalid constraint is not worth keeping
            if gone & set(over) and json.dumps(c.model_dump(mode="json", by_alias=True), sort_keys=True) not in have:
                kept.append(c)
        merged = CSP.model_validate({"variables": [*csp.variables, *dropped], "constraints": [*csp.constraints, *kept]})
    except (Stopped, ValidationError):
        return csp, []
    return merged, sorted(gone)


def _emit(ctx: RunContext, found: FormulationRound) -> None:
    ctx.emit("formulate_round", sample=found.sample, round=found.round, status=found.status, error=found.finding)
    ctx.emit(FormulationChecked, round=found.round, sample=found.sample, status=found.status, finding=found.finding,
             csp=found.csp.model_dump() if found.csp else None,
             solutions=found.result.solutions[:2] if found.result else [],
             count=found.result.count if found.result else 0)

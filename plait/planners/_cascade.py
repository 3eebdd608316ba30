"""Cascade: try the cheapest tier first, escalate only when its answer fails an acceptance test.

Tiers are model names (the cascade's ``step`` runs on that model) or nodes
and subgraphs, cheapest first. Each tier's output goes through ``accept``
(see ``_acceptance.py``); a tier whose reply never parsed (ParseError) or
whose vote had too few usable samples (VoteError) escalates too. Every
escalation emits :class:`~plait.orchestrator.CascadeEscalated`.

When no tier is accepted, ``on_exhausted`` decides: ``"last"`` (default)
returns the answer of the last tier that gave one, marked ``accepted=False``
(the most capable model's answer is the best the run has);
``"raise"`` raises :class:`~plait.errors.CascadeError`. When no tier gave an
answer at all, CascadeError is raised either way. The run's token budget
holds across tiers: each request reserves its worst case before it is sent,
and a :class:`~plait.BudgetExceededError` stops the cascade rather than
escalating past it. ``budget=`` tokens bound all tiers together: every
request of every tier reserves against it (a tier's calls are cut to what is
left); when a tier's next call no longer fits, the cascade stops escalating
and ends as on exhaustion, with the answers it has (``on_exhausted``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from plait.errors import BudgetExceededError, CascadeError, ConfigError, ParseError, VoteError
from plait.orchestrator._context import RunContext
from plait.orchestrator._events import CascadeEscalated
from plait.orchestrator._graph import Graph
from plait.orchestrator._node import Node, Signature
from plait.planners._acceptance import Acceptance, as_acceptance
from plait.planners._budget_split import Spending, check_budget, first_call_fits
from plait.planners._chain import ChainStep
from plait.planners._targets import Target, run_target, shared_signature, target_context, targets_from

__all__ = ["Cascade", "CascadeResult", "TierAttempt"]

_ESCALATING = (ParseError, VoteError)  # a tier that could not produce an answer


class TierAttempt(BaseModel):
    """One tier's try: whether it was accepted, why not, and what it cost."""

    tier: str  # the tier's label: its model name, node name or graph name
    model: str | None = None  # the model it ran on (model tiers)
    accepted: bool = False
    reason: str | None = None  # why it was escalated (None when accepted)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class CascadeResult(BaseModel):
    """The cascade's answer, the tier that gave it, and every tier tried in order."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    value: Any = None
    answered_by: str | None = None  # label of the tier whose answer this is
    tier: int | None = None  # its index (0: the cheapest)
    accepted: bool = False  # False: no tier passed the test, this is the last answer given (on_exhausted="last")
    attempts: list[TierAttempt] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens(self) -> int:
        return sum(a.tokens for a in self.attempts)

    def tokens_by_tier(self) -> dict[str, int]:
        """Tokens spent per tier label (a tier tried twice never happens: labels are unique)."""
        return {a.tier: a.tokens for a in self.attempts}


class Cascade(Node):
    """Tiers tried cheapest first; the first answer that passes ``accept`` is the output.

    Example::

        solve = FanOut(ChainStep("Q: {question}\\nA:", NumberParser(int)), k=5)
        cascade = Cascade(["small", "large"], step=solve, accept=agreement(0.6))
        await graph.run({"question": "..."}, backends={"small": b1, "large": b2})

    * ``tiers``: model names (``step`` runs on each) and/or Nodes and Graphs, cheapest first;
    * ``accept``: an acceptance test (``agreement``, ``parses``, ``consistent``, ``predicate``) or a
      function ``output -> bool``;
    * ``on_exhausted``: ``"last"`` or ``"raise"`` (see the module docstring);
    * ``budget``: tokens for all tiers together (see the module docstring);
    * ``value_only``: output the accepted value instead of the :class:`CascadeResult`.
    """

    def __init__(self, tiers: Sequence[str | Node | Graph], accept: Acceptance | Callable[[Any], bool], *,
                 step: Node | Graph | None = None, on_exhausted: Literal["last", "raise"] = "last",
                 value_only: bool = False, budget: int | None = None, name: str | None = None, **policy: Any):
        owner = f"Cascade {name!r}" if name else "Cascade"
        if isinstance(tiers, (str, Node, Graph)) or not isinstance(tiers, Sequence) or len(tiers) < 2:
            raise ConfigError(f"{owner} needs a list of at least two tiers (model names, nodes or graphs), "
                              f"cheapest first; got {tiers!r}")
        labels = [t.name if isinstance(t, (Node, Graph)) else str(t) for t in tiers]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{owner}: tier names must differ, got {labels}; give the nodes distinct names")
        if on_exhausted not in ("last", "raise"):
            raise ConfigError(f"{owner}: on_exhausted must be 'last' or 'raise', got {on_exhausted!r}")
        self.tiers: list[Target] = list(targets_from(owner, dict(zip(labels, tiers)), step).values())
        self.accept = as_acceptance(accept)
        self.on_exhausted = on_exhausted
        self.value_only = value_only
        self.budget = check_budget(owner, budget)
        self.runs_nodes = any(isinstance(t.runs, Graph) or t.runs.runs_nodes for t in self.tiers)
        self._params, self._output = shared_signature(owner, {t.label: t for t in self.tiers})
        super().__init__(name or "cascade", **policy)

    def models_used(self) -> set[str]:
        """The backend names the tiers ask for (checked when the run starts), and the cascade's own."""
        return super().models_used().union(*(t.models_used() for t in self.tiers))

    def signature(self) -> Signature:
        return Signature(dict(self._params), Any if self.value_only else CascadeResult, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        result = await self.escalate(ctx, kwargs)
        return result.value if self.value_only else result

    async def escalate(self, ctx: RunContext, inputs: dict[str, Any]) -> CascadeResult:
        """Try the tiers in order; return the accepted answer (or the last, per ``on_exhausted``)."""
        result = CascadeResult()
        last_answer: tuple[int, Any] | None = None
        first = self.tiers[0]
        if isinstance(first.runs, ChainStep):  # a budget that cannot hold the first tier's prompt is refused
            first_call_fits(f"Cascade {self.name!r}", self.budget, target_context(ctx, first, first.label),
                            first.runs.request(inputs))
        spend = Spending(ctx, limit=self.budget)
        for index, tier in enumerate(self.tiers):
            attempt = TierAttempt(tier=tier.label, model=tier.model)
            result.attempts.append(attempt)
            child = target_context(spend, tier, tier.label)
            reason: str | None
            spent = False
            try:
                output = await run_target(child, tier, inputs)
            except _ESCALATING as exc:
                reason, answer = f"{type(exc).__name__}: {_first_line(exc)}", _NONE
            except BudgetExceededError as exc:
                if not spend.owns(exc):
                    raise
                reason, answer, spent = f"the cascade's budget={self.budget} tokens ran out", _NONE, True
            else:
                reason = self.accept.check(output)
                answer = self._answer(output)
            usage = child.usage
            attempt.prompt_tokens, attempt.completion_tokens = usage.prompt_tokens, usage.completion_tokens
            attempt.requests = usage.requests
            if answer is not _NONE:
                last_answer = (index, answer)
            if reason is None:
                attempt.accepted = True
                result.value, result.answered_by, result.tier, result.accepted = answer, tier.label, index, True
                return result
            attempt.reason = reason = _clip(reason)  # it may quote model output: bounded
            if spent:  # no escalation past the budget
                break
            if index + 1 < len(self.tiers):
                ctx.emit(CascadeEscalated, from_tier=tier.label, to_tier=self.tiers[index + 1].label,
                         reason=reason, tokens=attempt.tokens)
        return self._exhausted(result, last_answer)

    def _answer(self, output: Any) -> Any:
        try:
            return self.accept.answer(output)
        except ParseError:  # a rejected text the test cannot read: no answer from this tier
            return _NONE

    def _exhausted(self, result: CascadeResult, last_answer: tuple[int, Any] | None) -> CascadeResult:
        tried = "; ".join(f"{a.tier}: {a.reason}" for a in result.attempts)
        if last_answer is None:
            raise CascadeError(f"cascade {self.name!r}: no tier gave an answer ({tried})", result)
        if self.on_exhausted == "raise":
            raise CascadeError(f"cascade {self.name!r}: no tier's answer was accepted ({tried}); loosen the "
                               "acceptance test, add a stronger tier, or pass on_exhausted='last'", result)
        index, answer = last_answer
        result.value, result.answered_by, result.tier = answer, self.tiers[index].label, index
        return result


_NONE: Any = object()  # "this tier gave no answer"


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

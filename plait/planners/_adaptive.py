"""Adaptive: width first, then depth, under one token budget.

Parallel votes win on questions whose samples agree often enough; chains
win where steps depend on each other and short samples split. ``Adaptive``
spends little where a question is easy and the rest where it is not: a small
wave of samples (one ``n``-request); if they agree, stop (``agree``); if they
split, widen to ``max_width`` samples (one more request); if the vote is
still split (the leader holds less than ``settle`` of the samples), spend
what is left of the budget on one deep pass: the step again with every
token left (a longer chain), or ``deepen``, a refine step shown the leading
answers (``{candidates}``). Every stage reserves its worst case against the
node's budget before it is sent (``Spending``), so the node never exceeds
it; the record lists the stages taken with the tokens each spent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from plait.errors import ConfigError, VoteError
from plait.executors._base import SamplingParams
from plait.orchestrator._context import RunContext
from plait.orchestrator._node import Node, Signature
from plait.planners._aggregators import Candidate, Majority
from plait.planners._budget_split import Spending, check_budget, explicit_max_tokens
from plait.planners._chain import ChainStep
from plait.planners._variants import draw

__all__ = ["Adaptive", "AdaptiveResult", "AdaptiveStage"]

Path = Literal["agree", "widen", "deepen"]
Stage = Literal["wave", "widen", "deepen"]


class AdaptiveStage(BaseModel):
    """One stage: ``wave``, ``widen`` or ``deepen``; the vote after it (cumulative) and the tokens it spent."""

    stage: Stage
    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    distribution: dict[str, int] = {}
    agreement: float = 0.0  # the leader's share of all samples drawn so far
    answer: str | None = None  # the deep pass's answer
    note: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class AdaptiveResult(BaseModel):
    """The answer, how far the node went (``path``), its stages with tokens, and every sample."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    winner: Any = None
    winner_key: str | None = None
    path: Path = "agree"
    stages: list[AdaptiveStage] = []
    budget: int = 0
    max_tokens: int = 0  # tokens each sample could generate
    candidates: list[Candidate] = []
    errors: list[str] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens(self) -> int:
        """Tokens spent by every stage (never more than ``budget``)."""
        return sum(s.tokens for s in self.stages)


class Adaptive(Node):
    """Width then depth for ``step`` within ``budget`` tokens (see the module docstring).

    * ``wave``: samples of the first stage; ``agree``: the share of them the
      leading answer needs to stop there (1.0: all);
    * ``max_width``: samples after widening (default ``2 * wave``);
      ``settle``: the share the leader needs then to stop before deepening;
    * ``deepen``: a ChainStep for the deep pass, whose template may use the
      step's inputs and ``{candidates}`` (the ``lead`` leading answers with
      their texts); default: the step itself, with every token left;
    * samples are the step's ``max_tokens`` long; a step without one splits
      the budget into ``max_width + 1`` shares (the last: room to deepen);
    * ``normalize``: groups equivalent answers (as in ``Majority``);
      ``sampling``: the samples' options (default: the step's, at
      temperature 0.7 when it is greedy); ``winner_only``: output the answer;
    * ``model``: the backend of every stage; by default the step's ``model``
      (a ``deepen`` step with its own ``model`` asks that one), else the node's.
    """

    def __init__(self, step: ChainStep, *, budget: int, wave: int = 3, max_width: int | None = None,
                 agree: float = 1.0, settle: float = 0.6, deepen: ChainStep | None = None, lead: int = 2,
                 normalize: Callable[[Any], Hashable] | None = None, sampling: SamplingParams | None = None,
                 winner_only: bool = False, keep_truncated: bool = False, name: str | None = None, **policy: Any):
        name = name or f"adaptive_{getattr(step, 'name', 'step')}"
        owner = f"Adaptive {name!r}"
        if not isinstance(step, ChainStep) or (deepen is not None and not isinstance(deepen, ChainStep)):
            raise ConfigError(f"{owner}: step and deepen must be ChainSteps, got {type(step).__name__} and "
                              f"{type(deepen).__name__}")
        if budget is None:
            raise ConfigError(f"{owner}: budget= (tokens for every stage) is required")
        self.budget: int = check_budget(owner, budget)  # type: ignore[assignment]
        for which in (step, deepen):
            if which is not None and which.budget is not None:
                raise ConfigError(f"{owner}: {which.name!r} has its own budget={which.budget}; give the budget to "
                                  "the Adaptive node only (it splits it between the stages)")
        max_width = 2 * wave if max_width is None else max_width
        if isinstance(wave, bool) or not isinstance(wave, int) or wave < 2:
            raise ConfigError(f"{owner}: wave must be >= 2 samples (one sample cannot agree), got {wave!r}")
        if not isinstance(max_width, int) or max_width < wave:
            raise ConfigError(f"{owner}: max_width must be >= wave ({wave}), got {max_width!r}")
        for label, share in (("agree", agree), ("settle", settle)):
            if not 0 < share <= 1:
                raise ConfigError(f"{owner}: {label} is a share of the samples, within (0, 1]; got {share!r}")
        if lead < 1:
            raise ConfigError(f"{owner}: lead must be >= 1 answer, got {lead!r}")
        if deepen is not None:
            unknown = sorted(set(deepen.template.variables) - set(step.params) - {"candidates"})
            if unknown:
                raise ConfigError(f"{owner}: the deepen step's template uses {unknown}, which are neither inputs of "
                                  f"{step.name!r} ({list(step.params)}) nor {{candidates}}")
        self.step, self.deepen, self.wave, self.max_width = step, deepen, wave, max_width
        self.agree, self.settle, self.lead, self.keep_truncated = agree, settle, lead, keep_truncated
        self.majority = Majority(normalize=normalize)
        self.sampling, self.winner_only = sampling, winner_only
        super().__init__(name, **policy)

    def models_used(self) -> set[str]:
        deep = self.deepen.models_used() if self.deepen is not None else set()
        return super().models_used() | self.step.models_used() | deep

    def signature(self) -> Signature:
        return Signature(dict(self.step.params), self.step.output_type if self.winner_only else AdaptiveResult, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        result = await self.decide(ctx, kwargs)
        return result.winner if self.winner_only else result

    async def decide(self, ctx: RunContext, inputs: dict[str, Any]) -> AdaptiveResult:
        """Run the stages and return the full record (raises VoteError when no stage produced an answer)."""
        spend = Spending(ctx if self.model else ctx.using(self.step.model), limit=self.budget)
        params = self._sample_params(spend, inputs)
        result = AdaptiveResult(budget=self.budget, max_tokens=params.max_tokens)
        prompt = spend.backend.count_prompt_tokens(self.step.request(inputs))
        candidates: list[Candidate] = []
        left = spend.left or 0
        if prompt + self.wave * params.max_tokens > left:
            raise ConfigError(f"Adaptive {self.name!r}: budget={self.budget} ({left} tokens left) cannot hold the "
                              f"first wave: a prompt of {prompt} and {self.wave} x max_tokens={params.max_tokens}; "
                              "raise budget, or lower wave or max_tokens")
        await self._stage(spend, result, "wave", candidates, self._draw(spend, inputs, 0, self.wave, params))
        result.path = "agree"
        if self._share(candidates) < self.agree:
            result.path = "widen"
            extra = min(self.max_width - len(candidates), ((spend.left or 0) - prompt) // params.max_tokens)
            if extra >= 1:
                await self._stage(spend, result, "widen", candidates,
                                  self._draw(spend, inputs, len(candidates), extra, params))
            else:
                result.stages.append(AdaptiveStage(stage="widen", note=self._short(spend, prompt, params.max_tokens)))
            if self._share(candidates) < self.settle:
                result.path = "deepen"
                await self._deepen(spend, inputs, candidates, result)
        return self._finish(ctx, result, candidates)

    def _sample_params(self, ctx: Spending, inputs: dict[str, Any]) -> SamplingParams:
        params = self.sampling or self.step.sampling
        if self.sampling is None and params.temperature == 0:
            params = params.model_copy(update={"temperature": 0.7})
        if explicit_max_tokens(params):
            return params
        prompt = ctx.backend.count_prompt_tokens(self.step.request(inputs))
        share = (self.budget - 3 * prompt) // (self.max_width + 1)  # prompts: wave, widen, deepen
        if share < 1:
            raise ConfigError(f"Adaptive {self.name!r}: budget={self.budget} cannot hold {self.max_width + 1} "
                              f"shares after 3 prompts of {prompt} tokens; raise budget or lower max_width")
        return params.model_copy(update={"max_tokens": max(share, params.min_tokens)})

    def _draw(self, ctx: Spending, inputs: dict, first: int, count: int,
              params: SamplingParams) -> Awaitable[list[Candidate]]:
        return draw(ctx, self.step, inputs, range(first, first + count), params, keep_truncated=self.keep_truncated)

    async def _stage(self, ctx: Spending, result: AdaptiveResult, name: Stage, candidates: list[Candidate],
                     drawing: Awaitable[list[Candidate]]) -> AdaptiveStage:
        before = (ctx.usage.prompt_tokens, ctx.usage.completion_tokens)
        new = await drawing
        candidates += new
        counts = self._counts(candidates)
        stage = AdaptiveStage(stage=name, samples=len(new), prompt_tokens=ctx.usage.prompt_tokens - before[0],
                              completion_tokens=ctx.usage.completion_tokens - before[1], distribution=counts,
                              agreement=self._share(candidates))
        result.stages.append(stage)
        return stage

    async def _deepen(self, ctx: Spending, inputs: dict, candidates: list[Candidate], result: AdaptiveResult) -> None:
        step = self.deepen or self.step
        if self.deepen is not None:  # a view of the same Spending: same usage, same budget
            ctx = ctx.using(step.model)  # type: ignore[assignment]
        values = dict(inputs)
        if "candidates" in step.template.variables:
            values["candidates"] = self._leading(candidates, result.max_tokens)
        prompt = ctx.backend.count_prompt_tokens(step.request(values))
        left = ctx.left or 0
        floor = step.sampling.max_tokens if self.deepen and explicit_max_tokens(step.sampling) else result.max_tokens
        if left - prompt < floor:
            result.stages.append(AdaptiveStage(stage="deepen", note=f"skipped: {left} tokens left, a deep pass "
                                               f"needs its prompt ({prompt}) and at least {floor} to reply"))
            return
        params = step.sampling.model_copy(update={"max_tokens": left - prompt})
        drawing = draw(ctx, step, values, range(len(candidates), len(candidates) + 1), params,
                       keep_truncated=self.keep_truncated)
        deep: list[Candidate] = []
        stage = await self._stage(ctx, result, "deepen", deep, drawing)
        (reply,) = deep
        candidates.append(reply)
        if reply.ok:
            stage.answer = _text(self.majority.key(reply.value))
        else:
            stage.note = f"the deep pass failed ({reply.error}); the vote's leader stands"[:300]
        stage.distribution, stage.agreement = self._counts(candidates[:-1]), self._share(candidates[:-1])

    def _finish(self, ctx: RunContext, result: AdaptiveResult, candidates: list[Candidate]) -> AdaptiveResult:
        deep = candidates[-1] if result.stages[-1].stage == "deepen" and result.stages[-1].samples else None
        votes = [c for c in candidates if c is not deep]
        result.candidates = candidates
        result.errors = [f"sample {c.index}: {c.error}" for c in candidates if not c.ok]
        groups = self.majority.groups(votes)
        if deep is not None and deep.ok:
            result.winner = deep.value
        elif groups:
            leader = max(groups, key=lambda k: (len(groups[k]), -groups[k][0].index))
            result.winner = groups[leader][0].value
        else:
            ctx.emit("adaptive", path=result.path, winner=None, tokens=result.tokens, budget=result.budget,
                     stages=[s.model_dump() for s in result.stages])
            raise VoteError(f"Adaptive {self.name!r}: no sample and no deep pass produced an answer. First errors: "
                            f"{result.errors[:3]}", result)
        result.winner_key = _text(self.majority.key(result.winner))
        ctx.emit("adaptive", path=result.path, winner=result.winner_key, tokens=result.tokens, budget=result.budget,
                 stages=[s.model_dump() for s in result.stages])
        return result

    def _counts(self, candidates: list[Candidate]) -> dict[str, int]:
        return {_text(key): len(members) for key, members in self.majority.groups(candidates).items()}

    def _share(self, candidates: list[Candidate]) -> float:
        """The leading answer's share of every sample drawn (failed samples count against it)."""
        counts = self._counts(candidates)
        return max(counts.values()) / len(candidates) if counts and candidates else 0.0

    def _leading(self, candidates: list[Candidate], max_tokens: int) -> str:
        """The ``lead`` most voted answers, each with its first sample's text (clipped: the text is the model's)."""
        groups = sorted(self.majority.groups(candidates).values(), key=lambda g: (-len(g), g[0].index))[: self.lead]
        limit = 8 * max_tokens  # a sample's text is at most max_tokens tokens; a longer one comes from a hostile server
        return "\n\n".join(f"Candidate {i} ({len(g)} of {len(candidates)} samples): {g[0].text[:limit]}"
                           for i, g in enumerate(groups, 1)) or "(no sample produced an answer)"

    @staticmethod
    def _short(ctx: Spending, prompt: int, max_tokens: int) -> str:
        return f"skipped: {ctx.left} tokens left hold no sample (prompt {prompt} + max_tokens={max_tokens})"


def _text(key: Any) -> str:
    return key if isinstance(key, str) else repr(key)

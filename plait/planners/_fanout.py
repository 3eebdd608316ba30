"""FanOut: k samples of one sub-step, aggregated into a vote.

When the sub-step is a :class:`ChainStep` (a single prompt) the samples come
from ONE request with ``n=k`` (one prefill; per wave when sampling in waves;
one per prompt variant, see ``_variants.py``). Any other sub-step (a Node, or
a Graph run as a subgraph) runs k times concurrently. Failed samples
(unparsable text, a failing subgraph) are kept and counted; the aggregator's
quorum decides whether enough succeeded. A ChainStep's samples are not
re-asked when they do not parse (that would cost one more request per
sample): they count as failed samples, and so do samples cut off at
``max_tokens`` (unfinished reasoning: their last number is not an answer)
unless ``keep_truncated=True``. With a seed, sample i is drawn with
``seed + i`` however the samples are split into waves (vLLM's rule inside an
n-request), so an early-stopping vote draws exactly the first samples of the
full vote. Given ``budget=`` tokens, the vote splits it: k samples of what is
left after their prompts, divided by k, or as many samples of the step's
``max_tokens`` as fit (``_budget_split.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, computed_field

from plait._deprecation import renamed_keyword
from plait.errors import BudgetExceededError, ConfigError, VoteError
from plait.executors._base import SamplingParams
from plait.orchestrator._context import RunContext
from plait.orchestrator._events import VoteTallied
from plait.orchestrator._graph import Graph, GraphNode
from plait.orchestrator._models import model_users
from plait.orchestrator._node import Node, Signature
from plait.orchestrator._runtime import run_subgraph
from plait.planners._aggregators import Aggregator, Candidate, Majority
from plait.planners._budget_split import Spending, check_budget, explicit_max_tokens, split_vote
from plait.planners._chain import ChainStep
from plait.planners._variants import CUT_OFF, VariantTally, as_variants, check_variant_keys, draw, variant_tallies

__all__ = ["FanOut", "VoteResult"]


class VoteResult(BaseModel):
    """The outcome of a fan-out vote (``variants``: how each prompt variant's samples voted, when it had variants)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    winner: Any = None
    winner_key: str | None = None
    distribution: dict[str, float] = {}
    agreement: float = 0.0
    samples: int = 0  # samples that finished (succeeded or failed)
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0  # samples started then cancelled by an early stop
    requests: int = 0  # backend requests made
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stopped_early: bool = False
    errors: list[str] = []
    candidates: list[Candidate] = []
    variants: list[VariantTally] = []
    k: int = 0  # samples the vote could draw (k, or what the budget held)
    max_tokens: int = 0  # tokens each ChainStep sample could generate (0 for Node and Graph steps)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy cannot see through it
    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens spent by the vote (samples, and judge calls for BestOfN)."""
        return self.prompt_tokens + self.completion_tokens


class FanOut(Node):
    """k samples of ``step`` aggregated by ``aggregate`` (default :class:`Majority`).

    * ``step``: a ChainStep (sampled with one ``n``-request), another Node, or a Graph;
    * ``k``: samples to draw (default 8);
    * ``variants``: prompt variants the samples are spread over (sample i uses
      variant ``i % len(variants)``): strings fill the template's ``{variant}``,
      dicts set placeholders (for a Node or Graph step: inputs); those
      placeholders are then not inputs of the vote;
    * ``budget``: tokens for the whole vote (prompts and samples), instead of k
      or ``max_tokens``: with ``k`` each sample gets an equal share of what the
      prompts leave; with the step's ``max_tokens`` the vote draws as many
      samples as fit (ChainStep steps only);
    * ``sampling``: sampling options for a ChainStep's samples; by default the
      step's own, at temperature 0.7 if the step is greedy (k greedy samples
      would all be the same);
    * ``winner_only``: output the winning value instead of the :class:`VoteResult`;
    * ``keep_truncated``: let a ChainStep sample cut off at ``max_tokens`` vote
      (by default it counts as a failed sample);
    * ``model``: the backend the samples come from; by default the step's
      ``model``, else the one this node runs under. An :class:`LLMJudge` may name its own.

    The inputs are the step's inputs. Emits a ``vote`` event with the tally.
    """

    def __init__(self, step: ChainStep | Node | Graph, k: int | None = None, aggregate: Aggregator | None = None, *,
                 variants: Sequence[str | Mapping[str, Any]] | None = None, budget: int | None = None,
                 sampling: SamplingParams | None = None, winner_only: bool = False, keep_truncated: bool = False,
                 name: str | None = None, **policy: Any):
        self.step = step.graph if isinstance(step, GraphNode) else step
        if not isinstance(self.step, (Node, Graph)):
            raise ConfigError(f"FanOut step must be a ChainStep, Node or Graph, got {type(step).__name__}")
        name = name or f"vote_{self.step.name}"
        owner = f"FanOut {name!r}"
        self.sampling = renamed_keyword("FanOut", policy, "params", "sampling", sampling)
        self.budget = check_budget(owner, budget)
        if isinstance(self.step, ChainStep) and self.step.budget is not None:
            raise ConfigError(f"{owner}: its step {self.step.name!r} has its own budget={self.step.budget}, which "
                              "its samples would not see (the vote sends the step's prompt itself); give the "
                              "budget to the FanOut, which splits it between the samples")
        if self.budget is None:
            k = 8 if k is None else k
        else:
            _check_budget_split(owner, self.step, k, self.sampling)
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigError(f"FanOut needs k >= 1 samples, got {k!r}")
        self.k = k  # None: as many samples as the budget holds
        self.runs_nodes = isinstance(self.step, Graph)  # subgraph samples need the run's concurrency slots
        self.aggregate = aggregate or Majority()
        if k is not None and self.aggregate.quorum > k:
            raise ConfigError(f"quorum {self.aggregate.quorum} can never be met with k={k} samples")
        if self.budget is not None and _judged_by_model(self.aggregate):
            raise ConfigError(f"{owner}: budget= is split between the samples and leaves nothing for the judge's "
                              "model calls; score with a function, or bound the run with token_budget= instead")
        self.variants = None if variants is None else as_variants(owner, variants)
        if self.variants is not None:
            check_variant_keys(owner, self.step, self.variants)
        self.winner_only = winner_only
        self.keep_truncated = keep_truncated
        super().__init__(name, **policy)

    def models_used(self) -> set[str]:
        step = self.step
        inner = {m for _, m in model_users(step._compile())} if isinstance(step, Graph) else step.models_used()
        judge = getattr(getattr(self.aggregate, "scorer", None), "models_used", None)
        return super().models_used() | inner | (judge() if callable(judge) else set())

    def signature(self) -> Signature:
        if isinstance(self.step, Graph):
            params, output = dict(self.step.input_params), self.step.output_type
        else:
            params, output = dict(self.step.params), self.step.output_type
        for key in self.variants[0].values if self.variants else ():
            params.pop(key, None)
        return Signature(params, output if self.winner_only else VoteResult, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        result = await self.vote(ctx, kwargs)
        return result.winner if self.winner_only else result

    async def vote(self, ctx: RunContext, inputs: dict[str, Any]) -> VoteResult:
        """Draw the samples, aggregate them, and return the full result (raises VoteError below quorum)."""
        tally = Spending(ctx if self.model else ctx.using(getattr(self.step, "model", None)), limit=self.budget)
        candidates: list[Candidate] = []
        result = VoteResult()
        k, params = self._size(tally, inputs)
        result.k, result.max_tokens = k, params.max_tokens if params is not None else 0
        for size in self._waves(k):
            if params is not None:
                stop = await self._prompt_wave(tally, inputs, size, candidates, params, k)
            else:
                stop = await self._task_wave(tally, inputs, size, candidates, result, k)
            if stop:
                result.stopped_early = len(candidates) < k
                break
        candidates.sort(key=lambda c: c.index)
        result.candidates = candidates
        result.samples = len(candidates)
        result.succeeded = sum(c.ok for c in candidates)
        result.failed = result.samples - result.succeeded
        result.errors = [f"sample {c.index}: {c.error}" for c in candidates if not c.ok]
        if result.succeeded < self.aggregate.quorum:
            self._finish(result, tally)
            if self.variants:
                result.variants = variant_tallies(candidates, self.variants, self.aggregate, None)
            ctx.emit("vote", winner=None, succeeded=result.succeeded, failed=result.failed)
            self._tallied(ctx, result)
            raise VoteError(f"only {result.succeeded} of {result.samples} samples succeeded; the vote needs "
                            f"{self.aggregate.quorum}. First errors: {result.errors[:3]}", result)
        decision = await self.aggregate.decide(candidates, tally, inputs)
        winner = next(c for c in candidates if c.index == decision.winner_index)
        result.winner, result.distribution, result.agreement = winner.value, decision.distribution, decision.agreement
        result.winner_key = _text(self.aggregate.key(winner.value))
        self._finish(result, tally)
        if self.variants:
            result.variants = variant_tallies(candidates, self.variants, self.aggregate, result.winner_key)
        ctx.emit("vote", winner=result.winner_key, distribution=result.distribution, agreement=result.agreement,
                 samples=result.samples, failed=result.failed, stopped_early=result.stopped_early,
                 tokens=result.tokens)
        self._tallied(ctx, result)
        return result

    def _tallied(self, ctx: RunContext, result: VoteResult) -> None:
        """Emit the :class:`~plait.VoteTallied` event the run viewer draws."""
        samples = result.candidates
        answers = [_text(self.aggregate.key(c.value)) if c.ok else None for c in samples]
        truncated = sum(1 for c in samples if c.error is not None and c.error.startswith(CUT_OFF))
        ctx.emit(VoteTallied, k=result.k, aggregator=type(self.aggregate).__name__, wave=self.aggregate.wave,
                 quorum=self.aggregate.quorum, winner=result.winner_key, distribution=result.distribution,
                 agreement=result.agreement, answers=answers, failed=result.failed, truncated=truncated,
                 cancelled=result.cancelled, stopped_early=result.stopped_early, errors=result.errors,
                 tokens=result.tokens, variants=[t.model_dump() for t in result.variants] or None)

    def _size(self, ctx: Spending, inputs: dict[str, Any]) -> tuple[int, SamplingParams | None]:
        """k and a ChainStep's sampling options (None for other steps), the budget split between them."""
        step = self.step
        if not isinstance(step, ChainStep):
            assert self.k is not None  # a budget needs a ChainStep step (checked when built)
            return self.k, None
        params = self._sampling_for(step)
        if self.budget is None:
            assert self.k is not None
            return self.k, params
        prompts = [ctx.backend.count_prompt_tokens(step.request({**inputs, **values}))
                   for values in ([v.values for v in self.variants] if self.variants else [{}])]
        k, max_tokens = split_vote(f"FanOut {self.name!r}", self.budget, prompts, self.aggregate.wave, k=self.k,
                                   max_tokens=params.max_tokens, quorum=self.aggregate.quorum)
        if params.min_tokens > max_tokens:
            raise ConfigError(f"FanOut {self.name!r}: budget={self.budget} leaves {max_tokens} tokens per sample, "
                              f"fewer than min_tokens={params.min_tokens}; raise budget or lower k or min_tokens")
        return k, params.model_copy(update={"max_tokens": max_tokens})

    def _waves(self, k: int) -> list[int]:
        size = self.aggregate.wave or k
        return [min(size, k - start) for start in range(0, k, size)]

    @staticmethod
    def _finish(result: VoteResult, tally: Spending) -> None:
        result.prompt_tokens += tally.usage.prompt_tokens
        result.completion_tokens += tally.usage.completion_tokens
        result.requests += tally.usage.requests

    def _sampling_for(self, step: ChainStep) -> SamplingParams:
        params = self.sampling or step.sampling
        if self.sampling is None and params.temperature == 0:
            params = params.model_copy(update={"temperature": 0.7})
        if self.aggregate.needs_logprobs and params.logprobs is None:
            params = params.model_copy(update={"logprobs": 0})
        return params

    async def _prompt_wave(self, ctx: Spending, inputs: dict, size: int, candidates: list[Candidate],
                           params: SamplingParams, k: int) -> bool:
        assert isinstance(self.step, ChainStep)
        first = len(candidates)
        candidates += await draw(ctx, self.step, inputs, range(first, first + size), params, self.variants,
                                 self.keep_truncated)
        return self.aggregate.should_stop(candidates, k - len(candidates))

    async def _task_wave(self, ctx: Spending, inputs: dict, size: int, candidates: list[Candidate],
                         result: VoteResult, k: int) -> bool:
        first = len(candidates) + result.cancelled
        stop = False

        async def one(index: int, tg: anyio.abc.TaskGroup) -> None:
            nonlocal stop
            candidate = await self._run_sample(ctx, inputs, index, result)
            candidates.append(candidate)
            done = {c.index for c in candidates}
            next_index = min((i for i in range(first, first + size) if i not in done), default=first + size)
            if not stop and self.aggregate.should_stop(candidates, k - len(candidates), next_index):
                stop = True
                tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for index in range(first, first + size):
                tg.start_soon(one, index, tg)
        result.cancelled = first + size - len(candidates)
        return stop

    async def _run_sample(self, ctx: Spending, inputs: dict, index: int, result: VoteResult) -> Candidate:
        candidate = Candidate(index=index)
        if self.variants:  # a Node or Graph step takes the variant's values as inputs
            candidate.variant = index % len(self.variants)
            inputs = {**inputs, **self.variants[candidate.variant].values}
        try:
            if isinstance(self.step, Graph):
                prefix = f"{ctx.node}[{index}]"
                # its nodes' tokens count in ctx's sum (Spending._enclose)
                candidate.value = await run_subgraph(self.step, dict(inputs), Spending(ctx, prefix))
            else:
                child = Spending(ctx, f"{ctx.node}[{index}]")  # its tokens count in ctx's sum too
                try:
                    candidate.value = await self.step.invoke(child, dict(inputs))
                finally:
                    candidate.completion_tokens = child.usage.completion_tokens
        except BudgetExceededError:
            raise
        except Exception as exc:
            candidate.error = f"{type(exc).__name__}: {exc}"
        candidate.text = "" if candidate.value is None else str(candidate.value)
        return candidate


def _text(key: Any) -> str:
    return key if isinstance(key, str) else repr(key)


def _check_budget_split(owner: str, step: Node | Graph, k: int | None, sampling: SamplingParams | None) -> None:
    """A budget splits into k samples or into samples of max_tokens: exactly one of the two must be given."""
    if not isinstance(step, ChainStep):
        raise ConfigError(f"{owner}: budget= splits tokens between the samples of a ChainStep; {step.name!r} is a "
                          f"{type(step).__name__}: give its own nodes a budget, or the run a token_budget")
    explicit = explicit_max_tokens(sampling or step.sampling)
    if k is not None and explicit:
        raise ConfigError(f"{owner}: budget=, k= and max_tokens all given; the budget is split into k samples of "
                          "budget/k tokens, or into as many samples of max_tokens as fit: drop k or max_tokens")
    if k is None and not explicit:
        raise ConfigError(f"{owner}: budget= needs k= (each sample then gets an equal share) or the step's "
                          "max_tokens (then the vote draws as many samples as fit); give one of them")


def _judged_by_model(aggregate: Aggregator | None) -> bool:
    """Whether the aggregator (or the one a Quorum wraps) scores samples with model calls (an LLMJudge)."""
    while aggregate is not None:
        if hasattr(getattr(aggregate, "scorer", None), "score"):
            return True
        aggregate = getattr(aggregate, "inner", None)
    return False

"""FanOut: k samples of one sub-step, aggregated into a vote.

When the sub-step is a :class:`ChainStep` (a single prompt) the samples come
from ONE request with ``n=k`` (one prefill; per wave when sampling in waves).
Any other sub-step (a Node, or a Graph run as a subgraph) runs k times
concurrently. Failed samples (unparsable text, a failing subgraph) are kept
and counted; the aggregator's quorum decides whether enough succeeded. A
ChainStep's samples are not re-asked when they do not parse (that would cost
one more request per sample): they count as failed samples, and so do samples
cut off at ``max_tokens`` (unfinished reasoning: their last number is not an
answer) unless ``keep_truncated=True``. With a seed,
sample i is drawn with ``seed + i`` however the samples are split into waves
(vLLM's rule inside an n-request), so an early-stopping vote draws exactly
the first samples of the full vote.
"""

from __future__ import annotations

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
from plait.orchestrator._record import TokenUsage
from plait.orchestrator._runtime import run_subgraph
from plait.planners._asking import constrained
from plait.planners._aggregators import Aggregator, Candidate, Majority
from plait.planners._chain import ChainStep

__all__ = ["FanOut", "VoteResult"]

_CUT_OFF = "cut off at max_tokens"  # how a truncated sample's error starts


class VoteResult(BaseModel):
    """The outcome of a fan-out vote."""

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

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy cannot see through it
    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens spent by the vote (samples, and judge calls for BestOfN)."""
        return self.prompt_tokens + self.completion_tokens


class _Tally(RunContext):
    """A run context that also sums the tokens spent through it."""

    __slots__ = ("usage",)

    def __init__(self, parent: RunContext, node: str | None = None):
        super().__init__(parent._state, node or parent.node, parent.iteration, model=parent.model)
        self.usage = TokenUsage()

    def report_tokens(self, prompt: int = 0, completion: int = 0, cached: int = 0, model: str = "", *,
                      model_name: str | None = None) -> None:
        super().report_tokens(prompt, completion, cached, model, model_name=model_name)
        self.usage.add(prompt, completion, cached)


class FanOut(Node):
    """k samples of ``step`` aggregated by ``aggregate`` (default :class:`Majority`).

    * ``step``: a ChainStep (sampled with one ``n``-request), another Node, or a Graph;
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

    def __init__(self, step: ChainStep | Node | Graph, k: int = 8, aggregate: Aggregator | None = None, *,
                 sampling: SamplingParams | None = None, winner_only: bool = False, keep_truncated: bool = False,
                 name: str | None = None, **policy: Any):
        if k < 1:
            raise ConfigError(f"FanOut needs k >= 1 samples, got {k}")
        self.step = step.graph if isinstance(step, GraphNode) else step
        if not isinstance(self.step, (Node, Graph)):
            raise ConfigError(f"FanOut step must be a ChainStep, Node or Graph, got {type(step).__name__}")
        self.k = k
        self.runs_nodes = isinstance(self.step, Graph)  # subgraph samples need the run's concurrency slots
        self.aggregate = aggregate or Majority()
        if self.aggregate.quorum > k:
            raise ConfigError(f"quorum {self.aggregate.quorum} can never be met with k={k} samples")
        self.sampling = renamed_keyword("FanOut", policy, "params", "sampling", sampling)
        self.winner_only = winner_only
        self.keep_truncated = keep_truncated
        super().__init__(name or f"vote_{self.step.name}", **policy)

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
        return Signature(params, output if self.winner_only else VoteResult, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        result = await self.vote(ctx, kwargs)
        return result.winner if self.winner_only else result

    async def vote(self, ctx: RunContext, inputs: dict[str, Any]) -> VoteResult:
        """Draw the samples, aggregate them, and return the full result (raises VoteError below quorum)."""
        tally = _Tally(ctx if self.model else ctx.using(getattr(self.step, "model", None)))
        candidates: list[Candidate] = []
        result = VoteResult()
        waves = self._waves()
        for size in waves:
            if isinstance(self.step, ChainStep):
                stop = await self._prompt_wave(tally, inputs, size, candidates, result)
            else:
                stop = await self._task_wave(tally, inputs, size, candidates, result)
            if stop:
                result.stopped_early = len(candidates) < self.k
                break
        candidates.sort(key=lambda c: c.index)
        result.candidates = candidates
        result.samples = len(candidates)
        result.succeeded = sum(c.ok for c in candidates)
        result.failed = result.samples - result.succeeded
        result.errors = [f"sample {c.index}: {c.error}" for c in candidates if not c.ok]
        if result.succeeded < self.aggregate.quorum:
            self._finish_tokens(result, tally)
            ctx.emit("vote", winner=None, succeeded=result.succeeded, failed=result.failed)
            self._tallied(ctx, result)
            raise VoteError(f"only {result.succeeded} of {result.samples} samples succeeded; the vote needs "
                            f"{self.aggregate.quorum}. First errors: {result.errors[:3]}", result)
        decision = await self.aggregate.decide(candidates, tally, inputs)
        winner = next(c for c in candidates if c.index == decision.winner_index)
        result.winner, result.distribution, result.agreement = winner.value, decision.distribution, decision.agreement
        result.winner_key = _text(self.aggregate.key(winner.value))
        self._finish_tokens(result, tally)
        ctx.emit("vote", winner=result.winner_key, distribution=result.distribution, agreement=result.agreement,
                 samples=result.samples, failed=result.failed, stopped_early=result.stopped_early,
                 tokens=result.tokens)
        self._tallied(ctx, result)
        return result

    def _tallied(self, ctx: RunContext, result: VoteResult) -> None:
        """Emit the :class:`~plait.VoteTallied` event the run viewer draws."""
        samples = result.candidates
        answers = [_text(self.aggregate.key(c.value)) if c.ok else None for c in samples]
        truncated = sum(1 for c in samples if c.error is not None and c.error.startswith(_CUT_OFF))
        ctx.emit(VoteTallied, k=self.k, aggregator=type(self.aggregate).__name__, wave=self.aggregate.wave,
                 quorum=self.aggregate.quorum, winner=result.winner_key, distribution=result.distribution,
                 agreement=result.agreement, answers=answers, failed=result.failed, truncated=truncated,
                 cancelled=result.cancelled, stopped_early=result.stopped_early, errors=result.errors,
                 tokens=result.tokens)

    def _waves(self) -> list[int]:
        size = self.aggregate.wave or self.k
        return [min(size, self.k - start) for start in range(0, self.k, size)]

    def _finish_tokens(self, result: VoteResult, tally: _Tally) -> None:
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

    async def _prompt_wave(self, ctx: _Tally, inputs: dict, size: int, candidates: list[Candidate],
                           result: VoteResult) -> bool:
        step = self.step
        assert isinstance(step, ChainStep)
        params = self._sampling_for(step).model_copy(update={"n": size})
        if params.seed is not None and candidates:  # sample i gets seed + i whatever the waves (vLLM's n-request rule)
            params = params.model_copy(update={"seed": params.seed + len(candidates)})
        params = constrained(params, step.parser, ctx.backend)
        request = step.request(inputs).model_copy(update={"params": params})
        completion = await ctx.generate(request)
        for sample in completion.samples:
            candidate = Candidate(index=len(candidates), text=sample.text, completion_tokens=sample.completion_tokens,
                                  cumulative_logprob=sample.cumulative_logprob)
            if sample.finish_reason == "length" and not self.keep_truncated:
                candidate.error = (f"{_CUT_OFF}={params.max_tokens} before it finished; raise max_tokens, "
                                   "or pass keep_truncated=True to let such samples vote")
                candidates.append(candidate)
                continue
            try:
                candidate.value = step.parser.parse(sample.text)
            except Exception as exc:  # a sample that does not parse is a failed sample, not a failed vote
                candidate.error = f"{type(exc).__name__}: {exc}"
            candidates.append(candidate)
        return self.aggregate.should_stop(candidates, self.k - len(candidates))

    async def _task_wave(self, ctx: _Tally, inputs: dict, size: int, candidates: list[Candidate],
                         result: VoteResult) -> bool:
        first = len(candidates) + result.cancelled
        stop = False

        async def one(index: int, tg: anyio.abc.TaskGroup) -> None:
            nonlocal stop
            candidate = await self._run_sample(ctx, inputs, index, result)
            candidates.append(candidate)
            done = {c.index for c in candidates}
            next_index = min((i for i in range(first, first + size) if i not in done), default=first + size)
            if not stop and self.aggregate.should_stop(candidates, self.k - len(candidates), next_index):
                stop = True
                tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for index in range(first, first + size):
                tg.start_soon(one, index, tg)
        result.cancelled = first + size - len(candidates)
        return stop

    async def _run_sample(self, ctx: _Tally, inputs: dict, index: int, result: VoteResult) -> Candidate:
        candidate = Candidate(index=index)
        try:
            if isinstance(self.step, Graph):
                prefix = f"{ctx.node}[{index}]"
                child = _Tally(ctx, prefix)
                try:
                    candidate.value = await run_subgraph(self.step, dict(inputs), child)
                finally:
                    self._count_subgraph(ctx, prefix + "/", result)
            else:
                child = _Tally(ctx, f"{ctx.node}[{index}]")
                try:
                    candidate.value = await self.step.invoke(child, dict(inputs))
                finally:
                    result.prompt_tokens += child.usage.prompt_tokens
                    result.completion_tokens += child.usage.completion_tokens
                    result.requests += child.usage.requests
                    candidate.completion_tokens = child.usage.completion_tokens
        except BudgetExceededError:
            raise
        except Exception as exc:
            candidate.error = f"{type(exc).__name__}: {exc}"
        candidate.text = "" if candidate.value is None else str(candidate.value)
        return candidate

    @staticmethod
    def _count_subgraph(ctx: RunContext, prefix: str, result: VoteResult) -> None:
        for name, record in ctx._state.records.items():
            if name.startswith(prefix):
                result.prompt_tokens += record.tokens.prompt_tokens
                result.completion_tokens += record.tokens.completion_tokens
                result.requests += record.tokens.requests


def _text(key: Any) -> str:
    return key if isinstance(key, str) else repr(key)

"""Aggregators: how a fan-out turns k samples into one answer.

Every aggregator groups successful samples by a normalised key
(``normalize(value)``, identity by default), decides a winner, and breaks
ties deterministically: among tied groups, the one whose first sample came
earliest (lowest sample index) wins. ``quorum`` is the number of successful
samples required; below it the fan-out raises :class:`~plait.errors.VoteError`.
Failed samples are always counted in the result, never dropped.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from plait.errors import ConfigError, VoteError
from plait.orchestrator._context import RunContext

__all__ = ["Candidate", "Decision", "Aggregator", "Majority", "LogprobWeighted", "BestOfN", "EarlyStop", "Quorum"]


class Candidate(BaseModel):
    """One sample of a fan-out: its parsed value, or the error that made it fail."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: int
    value: Any = None
    text: str = ""
    error: str | None = None
    cumulative_logprob: float | None = None
    completion_tokens: int = 0
    score: float | None = None
    variant: int | None = None  # the prompt variant it was drawn from (FanOut(variants=...))

    @property
    def ok(self) -> bool:
        return self.error is None


class Decision(BaseModel):
    """What an aggregator decided: the winning sample and the weight of every answer."""

    winner_index: int
    distribution: dict[str, float]
    agreement: float


def _leader(groups: dict[Hashable, list[Candidate]], weights: Mapping[Hashable, float]) -> Hashable:
    """The heaviest group; among tied groups, the one whose first sample came earliest."""
    return max(weights, key=lambda k: (weights[k], -groups[k][0].index))


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else repr(key)


class Aggregator:
    """Base class: group by normalised key, weigh each sample, pick the heaviest group.

    Subclasses override :meth:`weight` (per-sample weight), or :meth:`decide`.
    ``wave`` (None here) makes the fan-out sample in waves and consult
    :meth:`should_stop` after each sample.
    """

    wave: int | None = None
    needs_logprobs = False

    def __init__(self, *, normalize: Callable[[Any], Hashable] | None = None, quorum: int = 1):
        if quorum < 1:
            raise ConfigError(f"quorum must be >= 1, got {quorum}")
        self.normalize = normalize
        self.quorum = quorum

    def key(self, value: Any) -> Hashable:
        key = self.normalize(value) if self.normalize else value
        try:
            hash(key)
        except TypeError:
            key = repr(key)
        return key

    def weight(self, candidate: Candidate) -> float:
        return 1.0

    def groups(self, candidates: list[Candidate]) -> dict[Hashable, list[Candidate]]:
        """Successful candidates by key, in order of first appearance."""
        groups: dict[Hashable, list[Candidate]] = {}
        for c in sorted((c for c in candidates if c.ok), key=lambda c: c.index):
            groups.setdefault(self.key(c.value), []).append(c)
        return groups

    async def decide(self, candidates: list[Candidate], ctx: RunContext | None = None,
                     inputs: dict | None = None) -> Decision:
        groups = self.groups(candidates)
        if not groups:
            raise VoteError("no sample succeeded, so there is nothing to vote on")
        weights = {key: sum(self.weight(c) for c in members) for key, members in groups.items()}
        best = _leader(groups, weights)
        total = sum(weights.values())
        return Decision(winner_index=groups[best][0].index,
                        distribution={_key_text(k): w for k, w in weights.items()},
                        agreement=weights[best] / total if total else 0.0)

    def should_stop(self, candidates: list[Candidate], remaining: int, next_index: int | None = None) -> bool:
        """Whether sampling can stop: ``remaining`` samples are still to come, the lowest of them numbered
        ``next_index`` (default: one past the highest index seen)."""
        return False


class Majority(Aggregator):
    """Plain majority vote over normalised answers (self-consistency)."""


class LogprobWeighted(Aggregator):
    """Each sample votes with its probability: ``exp(cumulative_logprob)``, per token when ``per_token``.

    Per-token (geometric mean) weighting is the default so that long answers
    are not drowned by short ones. The fan-out asks the backend for logprobs.
    """

    needs_logprobs = True

    def __init__(self, *, per_token: bool = True, normalize: Callable[[Any], Hashable] | None = None,
                 quorum: int = 1):
        super().__init__(normalize=normalize, quorum=quorum)
        self.per_token = per_token

    def weight(self, candidate: Candidate) -> float:
        if candidate.cumulative_logprob is None:
            raise VoteError(f"sample {candidate.index} has no cumulative_logprob; a logprob-weighted vote needs a "
                            "backend that returns logprobs (backend.supports_logprobs)")
        logprob = candidate.cumulative_logprob
        if self.per_token:
            logprob /= max(candidate.completion_tokens, 1)
        return math.exp(logprob)


Scorer = Callable[..., Any]


class BestOfN(Aggregator):
    """The single best-scoring sample. ``scorer(answer, raw_text)`` returns a float (sync or async).

    ``answer`` is the sample's parsed value, ``raw_text`` the model's text; higher scores win.

    ``scorer`` may also be an :class:`~plait.planners.LLMJudge` (or anything
    with ``async score(ctx, candidate, inputs) -> float``). Ties go to the
    earliest sample. The distribution holds the best score of each answer.
    """

    def __init__(self, scorer: Scorer | Any, *, normalize: Callable[[Any], Hashable] | None = None, quorum: int = 1):
        super().__init__(normalize=normalize, quorum=quorum)
        self.scorer = scorer

    async def _score(self, candidate: Candidate, ctx: RunContext | None, inputs: dict) -> float:
        if hasattr(self.scorer, "score"):
            if ctx is None:
                raise VoteError(f"BestOfN's scorer {type(self.scorer).__name__} calls the model: pass the run "
                                "context, decide(candidates, ctx, inputs)")
            return float(await self.scorer.score(ctx, candidate, inputs))
        score = self.scorer(candidate.value, candidate.text)
        if inspect.isawaitable(score):
            score = await score
        return float(score)

    async def decide(self, candidates: list[Candidate], ctx: RunContext | None = None,
                     inputs: dict | None = None) -> Decision:
        ok = sorted((c for c in candidates if c.ok), key=lambda c: c.index)
        if not ok:
            raise VoteError("no sample succeeded, so there is nothing to score")
        scores: dict[int, float] = {}  # candidate index -> score
        for c in ok:
            if c.score is None:
                c.score = await self._score(c, ctx, inputs or {})
            scores[c.index] = c.score
        best = max(ok, key=lambda c: (scores[c.index], -c.index))
        distribution: dict[str, float] = {}
        for c in ok:
            k = _key_text(self.key(c.value))
            distribution[k] = max(distribution.get(k, -math.inf), scores[c.index])
        agreement = sum(1 for c in ok if self.key(c.value) == self.key(best.value)) / len(ok)
        return Decision(winner_index=best.index, distribution=distribution, agreement=agreement)


class EarlyStop(Majority):
    """Majority vote sampled in waves of ``wave`` that stops once the result is settled.

    After each sample the fan-out asks :meth:`should_stop`. The vote is
    settled when no answer can overtake the leader whatever the samples still
    to come say, counting the tie rule: a tie goes to the answer seen first,
    so 4 agreeing samples of 8 settle the vote. This rule never changes the
    winner of the full k-sample vote; it only skips samples that could not
    matter. Two looser rules can change it, and apply once at least
    ``min_samples`` samples succeeded (default: one wave, never fewer than 2):
    ``confidence`` stops once the leader holds at least that share of the
    votes; ``margin`` stops once the leader is that many votes ahead of every
    other answer (a sequential test: 2-0, 3-1 and 4-2 all stop at margin 2).
    ``failure_margin`` gives up on samples the model cannot finish: stop once
    failed samples (unparsable, cut off at ``max_tokens``) outnumber the
    leader's votes by that many; the vote then goes to the answers it has, or
    raises :class:`~plait.errors.VoteError` below quorum. Outstanding samples are
    then cancelled and later waves never sent.
    """

    def __init__(self, *, wave: int = 2, confidence: float | None = None, margin: int | None = None,
                 failure_margin: int | None = None, min_samples: int | None = None,
                 normalize: Callable[[Any], Hashable] | None = None, quorum: int = 1):
        super().__init__(normalize=normalize, quorum=quorum)
        if wave < 1:
            raise ConfigError(f"wave must be >= 1, got {wave}")
        if confidence is not None and not 0 < confidence <= 1:
            raise ConfigError(f"confidence must be within (0, 1], got {confidence}")
        if margin is not None and margin < 1:
            raise ConfigError(f"margin must be >= 1 vote, got {margin}")
        if failure_margin is not None and failure_margin < 1:
            raise ConfigError(f"failure_margin must be >= 1 sample, got {failure_margin}")
        self.wave = wave
        self.confidence = confidence
        self.margin = margin
        self.failure_margin = failure_margin
        self.min_samples = min_samples if min_samples is not None else max(wave, 2)  # one sample is no vote

    def should_stop(self, candidates: list[Candidate], remaining: int, next_index: int | None = None) -> bool:
        groups = self.groups(candidates)
        counts = {key: len(members) for key, members in groups.items()}
        if self.failure_margin is not None:
            failed = sum(1 for c in candidates if not c.ok)
            if failed - max(counts.values(), default=0) >= self.failure_margin:
                return True
        if not groups:
            return False
        leader = _leader(groups, counts)
        if counts[leader] < self.quorum:
            return False
        if self._settled(groups, counts, leader, remaining, candidates, next_index):
            return True
        succeeded = sum(counts.values())
        if succeeded < self.min_samples:
            return False
        if self.confidence is not None and counts[leader] / succeeded >= self.confidence:
            return True
        runner_up = max((n for k, n in counts.items() if k != leader), default=0)
        return self.margin is not None and counts[leader] - runner_up >= self.margin

    @staticmethod
    def _settled(groups: dict, counts: dict, leader: Hashable, remaining: int, candidates: list[Candidate],
                 next_index: int | None) -> bool:
        """No rival (a known answer or a new one) can end above the leader, or level with it and seen first."""
        if next_index is None:
            next_index = max(c.index for c in candidates) + 1
        lead, lead_first = counts[leader], groups[leader][0].index
        rivals = [(counts[k], groups[k][0].index) for k in groups if k != leader] + [(0, next_index)]
        for count, first in rivals:
            best, earliest = count + remaining, min(first, next_index) if remaining else first
            if best > lead or (best == lead and earliest < lead_first):
                return False
        return True


class Quorum(Aggregator):
    """Require ``required`` successful samples, then let ``inner`` (default: majority) decide.

    Only samples that parsed count: failed ones do not, nor ones cut off at
    ``max_tokens`` (unless the fan-out keeps them, ``keep_truncated=True``).
    Below the quorum the fan-out raises :class:`~plait.VoteError`.
    """

    def __init__(self, required: int, inner: Aggregator | None = None):
        if required < 1:
            raise ConfigError(f"Quorum needs at least 1 successful sample, got required={required}")
        inner = inner or Majority()
        super().__init__(normalize=inner.normalize, quorum=max(required, inner.quorum))
        self.inner = inner
        self.wave = inner.wave
        self.needs_logprobs = inner.needs_logprobs

    def key(self, value: Any) -> Hashable:
        return self.inner.key(value)

    async def decide(self, candidates: list[Candidate], ctx: RunContext | None = None,
                     inputs: dict | None = None) -> Decision:
        return await self.inner.decide(candidates, ctx, inputs)

    def should_stop(self, candidates: list[Candidate], remaining: int, next_index: int | None = None) -> bool:
        succeeded = sum(1 for c in candidates if c.ok)
        return succeeded >= self.quorum and self.inner.should_stop(candidates, remaining, next_index)

"""The formalization vote: k formulations from one ``n=k`` request, each solved and repaired, voted by answer.

:func:`run_chains` draws the first replies of all k chains (:class:`~plait.solvers._formulate_repair.Chain`)
in one request (one prefill of the shared prompt; in waves of ``aggregate.wave`` when the aggregator samples
in waves, sample i seeded ``seed + i`` as vLLM does), judges each, then repairs the unsolved ones
concurrently. A chain votes with its answer (the answer variables' values) once solved, and counts as a
failed sample once its rounds are spent. The aggregator is the fan-out's
(:mod:`plait.planners._aggregators`): after every chain that ends it is asked whether the vote is settled,
and when it is, the chains still repairing are cancelled and later waves never sent. A single formulation
(k=1) is the same path without the vote. Under ``Formulate(budget=)`` every request is cut to what the budget
has left (a wave's samples share it); a wave or a repair with no room is not sent, and the vote is decided
over the chains that ended.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio

from plait.executors import Message, Request
from plait.errors import BudgetExceededError
from plait.orchestrator import RunContext, VoteTallied
from plait.planners._aggregators import Candidate
from plait.planners._budget_split import fit, owned
from plait.solvers._formulate_repair import Chain, Tally

if TYPE_CHECKING:
    from plait.solvers._formulate import Formulate

__all__ = ["run_chains", "Outcome"]

_RANK = {"solved": 0, "ambiguous": 1, "unsat": 2, "timeout": 3, "invalid": 4}
"""Which failed chain speaks for an unsolved vote: the one that got furthest (ties: the earliest)."""


class Outcome:
    """What :func:`run_chains` decided: the chain that speaks for the result, and the vote (None for k=1)."""

    def __init__(self, chain: Chain, tally: Tally, confidence: float | None = None,
                 votes: dict[str, float] | None = None, below_quorum: bool = False):
        self.chain, self.tally, self.confidence, self.votes = chain, tally, confidence, votes or {}
        self.below_quorum = below_quorum


async def run_chains(node: Formulate, ctx: RunContext, problem: str, first: list[Message]) -> Outcome:
    """Draw, judge, repair and (k > 1) vote the k formulations of ``problem``; ``first`` is the first prompt."""
    tally = Tally()
    chains = [Chain(node, problem, first, i, tally) for i in range(node.k)]
    if node.k == 1:
        await _first_replies(node, ctx, chains, tally)
        await chains[0].repair(ctx)
        return Outcome(chains[0], tally)
    aggregate = node.aggregate
    ended: list[Candidate] = []
    stopped = False

    def end(chain: Chain) -> bool:
        """Count ``chain`` as voted (or failed); whether the vote is now settled."""
        ended.append(_candidate(chain))
        waiting = [c.sample for c in chains if c.sample not in {e.index for e in ended}]
        return aggregate.should_stop(ended, node.k - len(ended), min(waiting, default=node.k))

    size = aggregate.wave or node.k
    for start in range(0, node.k, size):
        wave = chains[start:start + size]
        try:
            await _first_replies(node, ctx, wave, tally, start)
        except BudgetExceededError as exc:  # the node's budget holds no further wave: the vote ends here
            if not (start and owned(ctx, exc)):
                raise
            tally.spent = stopped = True
            break
        pending = [c for c in wave if not c.solved and len(c.rounds) < node.max_rounds and c.rounds]
        for chain in wave:
            if chain not in pending:
                stopped = end(chain) or stopped
        if stopped:
            break
        failures: list[Exception] = []
        async with anyio.create_task_group() as group:
            async def repair(chain: Chain) -> None:
                nonlocal stopped
                try:
                    await chain.repair(ctx)
                except Exception as exc:  # a spent budget, a failing backend: the node fails with it, ungrouped
                    failures.append(exc)
                    group.cancel_scope.cancel()
                    return
                if not stopped and end(chain):
                    stopped = True
                    group.cancel_scope.cancel()

            for chain in pending:
                group.start_soon(repair, chain)
        if failures:
            raise failures[0]
        if stopped:
            break
    return await _decide(node, ctx, chains, ended, tally, stopped)


async def _first_replies(node: Formulate, ctx: RunContext, wave: list[Chain], tally: Tally, start: int = 0) -> None:
    """One request with ``n=len(wave)``; sample i is the first reply of chain ``start + i``."""
    params = node.sampling.model_copy(update={"n": len(wave)})
    if node.k > 1 and params.temperature == 0:
        params = params.model_copy(update={"temperature": node.resample_temperature})  # k greedy samples agree
    if params.seed is not None and start:
        params = params.model_copy(update={"seed": params.seed + start})
    request = fit(ctx, Request(prompt=tuple(wave[0].first), params=params), f"Formulate {node.name!r}")
    completion = await ctx.generate(request)
    tally.tokens += completion.total_tokens
    for chain, sample in zip(wave, completion.samples):  # a server that sends fewer samples leaves chains unjudged
        await chain.take(ctx, request, sample)


def _candidate(chain: Chain) -> Candidate:
    answer = chain.answer()
    verdict = chain.verdict
    text = chain.node.syntax.format(verdict.csp) if verdict is not None and verdict.csp is not None else ""
    if answer is not None:
        return Candidate(index=chain.sample, value=json.dumps(answer, sort_keys=True), text=text)
    why = f"{verdict.status}: {(verdict.finding or '')[:200]}" if verdict is not None else "no reply"
    return Candidate(index=chain.sample, text=text, error=why)


async def _decide(node: Formulate, ctx: RunContext, chains: list[Chain], ended: list[Candidate], tally: Tally,
                  stopped: bool) -> Outcome:
    ended.sort(key=lambda c: c.index)
    ok = [c for c in ended if c.ok]
    aggregate = node.aggregate
    if ok:
        decision = await aggregate.decide(ended, ctx, {"problem": chains[0].problem})
        outcome = Outcome(chains[decision.winner_index], tally, decision.agreement, decision.distribution,
                          below_quorum=len(ok) < aggregate.quorum)
    else:
        judged = [c for c in chains if c.verdict is not None] or chains
        speaker = min(judged, key=lambda c: (_RANK.get(c.verdict.status, 9) if c.verdict else 9, c.sample))
        outcome = Outcome(speaker, tally, 0.0)
    winner = aggregate.key(json.dumps(outcome.chain.answer(), sort_keys=True)) if ok else None
    failed = [c for c in ended if not c.ok]
    ctx.emit(VoteTallied, k=node.k, aggregator=type(aggregate).__name__, wave=aggregate.wave, quorum=aggregate.quorum,
             winner=winner if winner is None or isinstance(winner, str) else repr(winner),
             distribution=outcome.votes, agreement=outcome.confidence or 0.0,
             answers=[c.value if c.ok else None for c in ended], failed=len(failed),
             truncated=sum(1 for c in failed if chains[c.index].rounds and chains[c.index].rounds[-1].truncated),
             cancelled=node.k - len(ended) if stopped else 0, stopped_early=stopped and len(ended) < node.k,
             errors=[f"sample {c.index}: {c.error}" for c in failed], tokens=tally.tokens)
    return outcome


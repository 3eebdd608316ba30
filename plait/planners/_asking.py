"""One model call with parsing and bounded re-asking (shared by chain steps and subtask trees)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from plait.errors import ConfigError, ParseError
from plait.executors._base import Backend, Completion, Request, SamplingParams
from plait.executors._reask import ask_until_usable, reask_request
from plait.orchestrator._context import RunContext
from plait.planners._budget_split import Spending, reply_tokens, within_budget
from plait.planners._parsers import Parser

__all__ = ["Asked", "ask", "constrained"]


@dataclasses.dataclass
class Asked:
    """A parsed reply: the value, the raw text, the completion it came from, and how many calls it took."""

    value: Any
    raw: str
    completion: Completion
    calls: int


def constrained(params: SamplingParams, parser: Parser, backend: Backend | None) -> SamplingParams:
    """``params`` with the parser's constraint added when the backend honours structured outputs.

    The one place strategies decide whether to send a parser's constraint. ``backend`` is ``ctx.backend``:
    in a checkpointed run the recording wrapper, which on replay reports the recorded backend's capability,
    so a replay builds the same requests.
    """
    if params.constraint is not None or not parser.constrain:
        return params
    if not getattr(backend, "supports_structured_output", False):
        return params
    constraint = parser.constraint()
    return params if constraint is None else params.model_copy(update={"constraint": constraint})


class _Spent(Exception):
    """A budgeted ask has too few tokens left for another re-ask."""


def _fit(ctx: Spending, attempts: list[str]) -> Callable[[Request], Request]:
    """Before each call: ``max_tokens`` becomes what the budget leaves after the prompt (see :func:`ask`)."""
    def before(request: Request) -> Request:
        left = ctx.left
        if left is None:
            return request
        prompt = ctx.backend.count_prompt_tokens(request)
        if attempts and left - prompt < max(request.params.min_tokens, 1):
            raise _Spent
        params = request.params.model_copy(update={"max_tokens": reply_tokens(f"node {ctx.node!r}", left, prompt)})
        if params.min_tokens > params.max_tokens:
            raise ConfigError(f"node {ctx.node!r}: its budget leaves {params.max_tokens} tokens for the reply, fewer "
                              f"than min_tokens={params.min_tokens}; raise budget or lower min_tokens")
        return request.model_copy(update={"params": params})

    return before


def reask(request: Request, raw: str, error: ParseError, parser: Parser, turn: str = "") -> Request:
    """The follow-up request that shows the model its reply, what was wrong with it, and the parser's hint."""
    hint = parser.instructions()
    return reask_request(request, raw, f"Your reply could not be used: {error}.{' ' + hint if hint else ''} "
                                       "Reply again.", turn)


def parsed(parser: Parser, raw: str) -> tuple[Any, ParseError | None]:
    """``(value, None)`` when ``raw`` parses, else ``(None, the ParseError)``: a judge for the re-ask loop."""
    try:
        return parser.parse(raw), None
    except ParseError as exc:
        return None, exc


async def ask(ctx: RunContext, request: Request, parser: Parser, *, max_reasks: int,
              budget: int | None = None) -> Asked:
    """Send ``request`` through ``ctx.generate`` and parse; re-ask up to ``max_reasks`` times.

    Given ``budget`` (tokens for every call, prompts included), each call's
    ``max_tokens`` is what the budget has left after its prompt: the first
    call gets all of it, and re-asking stops when what is left cannot hold a
    re-ask's prompt and a reply. Without ``budget`` but inside a node with
    one (``ctx`` a :class:`Spending`), each call is cut to what that budget
    has left; one with no room for a reply is not sent (BudgetExceededError,
    also when a reply cut short by that budget does not parse). Raises
    :class:`~plait.ParseError` carrying the last raw text (and every
    attempt's text in ``attempts``) when no reply parses.
    """
    request = request.model_copy(update={"params": constrained(request.params, parser, ctx.backend)})
    attempts: list[str] = []
    problems: list[ParseError] = []
    before = None
    cut = within_budget(ctx)  # inside a node with a budget: each call gets at most what it has left
    if budget is not None:
        ctx = Spending(ctx, limit=budget)
        before = _fit(ctx, attempts)
    else:
        before = cut

    def judge(request: Request, completion: Completion, call: int) -> tuple[Any, ParseError | None]:
        attempts.append(completion.text)
        value, problem = parsed(parser, completion.text)
        if problem is not None:
            problems.append(problem)
        return value, problem

    try:
        reply = await ask_until_usable(ctx, request, judge, rounds=max_reasks + 1, before=before,
                                       follow_up=lambda request, raw, error: reask(request, raw, error, parser))
    except _Spent:
        raise ParseError(f"no parsable reply within budget={budget} tokens after {len(attempts)} attempt(s) "
                         f"(too few tokens left to re-ask): {problems[-1]}", raw=attempts[-1],
                         attempts=attempts) from None
    if reply.problem is None:
        return Asked(reply.value, reply.raw, reply.completion, reply.calls)
    if budget is None and cut is not None:
        cut.raise_if_cut()
    raise ParseError(f"no parsable reply after {len(attempts)} attempt(s) ({max_reasks} re-ask(s)): {reply.problem}",
                     raw=attempts[-1], attempts=attempts)

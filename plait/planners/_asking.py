"""One model call with parsing and bounded re-asking (shared by chain steps and subtask trees)."""

from __future__ import annotations

import dataclasses
from typing import Any

from plait.errors import ParseError
from plait.executors._base import Backend, Completion, Message, Request, SamplingParams
from plait.orchestrator._context import RunContext
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


def reask(request: Request, raw: str, error: ParseError, parser: Parser, turn: str = "") -> Request:
    """The follow-up request that shows the model its reply and what was wrong with it.

    Text prompts get the reply, the feedback and then ``turn`` (the cue that
    precedes a reply in the caller's prompt layout) appended.
    """
    hint = parser.instructions()
    feedback = f"Your reply could not be used: {error}.{' ' + hint if hint else ''} Reply again."
    if isinstance(request.prompt, str):
        prompt: Any = f"{request.prompt}{raw}\n\n{feedback}\n{turn}"
    else:
        prompt = (*request.prompt, Message(role="assistant", content=raw), Message(role="user", content=feedback))
    return request.model_copy(update={"prompt": prompt})


async def ask(ctx: RunContext, request: Request, parser: Parser, *, max_reasks: int) -> Asked:
    """Send ``request`` through ``ctx.generate`` and parse; re-ask up to ``max_reasks`` times.

    Raises :class:`~plait.ParseError` carrying the last raw text (and every
    attempt's text in ``attempts``) when no reply parses.
    """
    request = request.model_copy(update={"params": constrained(request.params, parser, ctx.backend)})
    attempts: list[str] = []
    for call in range(1, max_reasks + 2):
        completion = await ctx.generate(request)
        raw = completion.text
        attempts.append(raw)
        try:
            return Asked(parser.parse(raw), raw, completion, call)
        except ParseError as exc:
            last = exc
            if call <= max_reasks:
                request = reask(request, raw, exc, parser)
    raise ParseError(f"no parsable reply after {len(attempts)} attempt(s) ({max_reasks} re-ask(s)): {last}",
                     raw=attempts[-1], attempts=attempts)

"""The one re-ask loop: send a request, judge the reply, ask again with what was wrong, a bounded number of times.

Chain steps and subtask trees (a parse error), the planner (a plan's
problems) and ``Formulate`` (the solver's verdict on a constraint model) all
ask through :func:`ask_until_usable`. Each passes how it judges a reply and
how its follow-up request is written; each keeps its own records, events and
final error. It lives in ``executors`` (the layer of requests and replies) so
that planners and solvers share it without importing each other.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from plait.errors import ConfigError
from plait.executors._base import Completion, Message, Request

__all__ = ["Reply", "ask_until_usable", "reask_request"]

T = TypeVar("T")

Judge = Callable[[Request, Completion, int], "tuple[Any, Any] | Awaitable[tuple[Any, Any]]"]
"""Judges a reply: ``(value, problem)``, ``problem`` None when the reply is usable (sync or async)."""


@dataclasses.dataclass
class Reply(Generic[T]):
    """The last reply: its value, the problem with it (None: usable), its text and completion, calls made."""

    value: T
    raw: str
    completion: Completion
    calls: int
    problem: Any = None


async def ask_until_usable(ctx: Any, request: Request, judge: Judge, *, rounds: int,
                           follow_up: Callable[[Request, str, Any], Request],
                           before: Callable[[Request], Request] | None = None) -> Reply:
    """Call the model through ``ctx.generate`` at most ``rounds`` times, until ``judge`` finds no problem.

    ``judge(request, completion, call)`` (sync or async; ``call`` counts from
    1) returns ``(value, problem)``, ``problem`` None when the reply is
    usable. After a problem, ``follow_up(request, raw, problem)`` writes the
    next request. ``before(request)``, when given, runs before every call (a
    budget check that raises, a request shrunk to fit what is left). Returns
    the usable reply, or the last one with its problem when the rounds are
    spent: the caller decides what failing means.
    """
    if rounds < 1:
        raise ConfigError(f"ask_until_usable needs rounds >= 1, got {rounds}")
    call = 0
    while True:
        call += 1
        if before is not None:
            request = before(request)
        completion = await ctx.generate(request)
        verdict = judge(request, completion, call)
        value, problem = await verdict if inspect.isawaitable(verdict) else verdict
        if problem is None or call == rounds:
            return Reply(value, completion.text, completion, call, problem)
        request = follow_up(request, completion.text, problem)


def reask_request(request: Request, raw: str, feedback: str, turn: str = "") -> Request:
    """The request that shows the model its reply and ``feedback`` on it.

    Chat prompts get the reply as an assistant message and the feedback as a
    user message; text prompts get the reply, the feedback and then ``turn``
    (the cue that precedes a reply in the caller's prompt layout) appended.
    """
    if isinstance(request.prompt, str):
        prompt: Any = f"{request.prompt}{raw}\n\n{feedback}\n{turn}"
    else:
        prompt = (*request.prompt, Message(role="assistant", content=raw), Message(role="user", content=feedback))
    return request.model_copy(update={"prompt": prompt})

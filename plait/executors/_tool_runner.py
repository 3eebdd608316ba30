"""Running tools within one run: timeouts, retries, concurrency limits, a result cache.

A tool that raises (or times out, or gets arguments that do not fit) does not
crash the run: :meth:`ToolRunner.call` returns a :class:`ToolFailure` value
carrying the exception's message, which the plan's evidence records and the
solver (or the ReAct agent) reads like any other observation.

A sync tool runs in a worker thread (see ``plait/orchestrator/_threads.py``):
its ``timeout`` holds even when it blocks, a timed-out thread is abandoned
(reported as a ``tool_thread_abandoned`` event), and a retry starts only once
the attempt it replaces has ended, so attempts of one call never overlap.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Union

import anyio
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from plait._json import problem_lines
from plait._retry import retry
from plait.executors._tools import Tool, ToolRegistry
from plait.orchestrator._threads import Lane

__all__ = ["ToolRunner", "ToolFailure"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ToolFailure:
    """The value a failed tool call leaves in the evidence."""

    tool: str
    error: str  # "ExceptionType: message"
    attempts: int = 1

    def __str__(self) -> str:
        return f"ERROR from {self.tool}: {self.error}"


class _Pending:
    """An identical call already in flight: later callers wait for its result."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Any = None


class ToolRunner:
    """Calls the tools of a :class:`ToolRegistry` for one run.

    Create one per run (per plan-and-execute or ReAct invocation): the result
    cache and the concurrency limits live here. ``emit(name, **data)`` (e.g.
    ``ctx.emit``) receives ``tool_cache_hit`` and ``tool_retry`` events.
    """

    def __init__(self, tools: ToolRegistry, *, emit: Callable[..., None] | None = None,
                 remember: Callable[[str, str, Callable[[], Awaitable[Any]], Any], Awaitable[Any]] | None = None):
        self.tools = tools
        self._emit = emit or (lambda name, **data: None)
        self._remember = remember
        self._limits = {t.name: anyio.Semaphore(t.max_concurrency) for t in tools if t.max_concurrency}
        self._cache: dict[tuple[str, str], _Pending] = {}
        self.calls = 0  # tool executions actually started (cache hits excluded)
        self.cache_hits = 0

    async def call(self, name: str, args: dict[str, Any]) -> Any:
        """Run tool ``name`` with ``args``; return its result or a :class:`ToolFailure`."""
        t = self.tools.get(name)
        if t is None:
            return ToolFailure(name, f"ToolError: unknown tool {name!r}; known tools: {self.tools.names}")
        try:
            args = t.validate_args(args)
        except ValidationError as exc:
            return ToolFailure(t.name, "invalid arguments: " + "; ".join(problem_lines(exc, "args", show_input=True)), 0)
        if self._remember is not None:  # a checkpointed run records results; resume and replay reuse them
            return await self._remember("tool", f"{t.name}:{_canonical(args)}", lambda: self._cached(t, args),
                                        Union[ToolFailure, t.returns])  # the type the record is loaded back as
        return await self._cached(t, args)

    async def _cached(self, t: Tool, args: dict[str, Any]) -> Any:
        if not t.cache:
            return await self._run(t, args)
        key = (t.name, _canonical(args))
        pending = self._cache.get(key)
        if pending is not None:
            self.cache_hits += 1
            self._emit("tool_cache_hit", tool=t.name, args=args)
            await pending.done.wait()
            return pending.value
        pending = self._cache[key] = _Pending()
        try:
            pending.value = await self._run(t, args)
            if isinstance(pending.value, ToolFailure):
                del self._cache[key]  # failures are not cached: a later identical call tries again
        except BaseException:
            del self._cache[key]
            pending.value = ToolFailure(t.name, "cancelled")
            raise
        finally:
            pending.done.set()
        return pending.value

    async def _run(self, t: Tool, args: dict[str, Any]) -> Any:
        limit = self._limits.get(t.name)
        if limit is None:
            return await self._attempts(t, args)
        async with limit:
            return await self._attempts(t, args)

    async def _attempts(self, t: Tool, args: dict[str, Any]) -> Any:
        lane = Lane(on_abandon=lambda running: self._emit("tool_thread_abandoned", tool=t.name, running=running))
        ran = 0

        async def attempt(number: int) -> Any:
            nonlocal ran
            ran = number
            self.calls += 1
            return await self._once(t, args, lane)

        def retried(exc: BaseException, number: int, delay: float) -> None:
            self._emit("tool_retry", tool=t.name, attempt=number, error=f"{type(exc).__name__}: {exc}", delay=delay)

        try:
            return await retry(t.retry, attempt, on_retry=retried)
        except Exception as exc:  # a tool's failure is evidence, not a crash
            error = f"{type(exc).__name__}: {exc}"
            log.info("tool %s failed after %d attempt(s): %s", t.name, ran, error)
            return ToolFailure(t.name, error, ran)

    async def _once(self, t: Tool, args: dict[str, Any], lane: Lane) -> Any:
        if t.timeout is None:
            return await self._invoke(t, args, lane)
        with anyio.move_on_after(t.timeout) as scope:
            return await self._invoke(t, args, lane)
        if scope.cancelled_caught:
            raise TimeoutError(f"tool {t.name!r} timed out after {t.timeout:g}s")
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    async def _invoke(t: Tool, args: dict[str, Any], lane: Lane) -> Any:
        """One attempt; a sync tool's attempt runs in a worker thread, after the attempt it retries has ended."""
        if t.is_async:
            return await t.fn(**args)
        if t.blocking:
            return await lane.run(functools.partial(t.fn, **args), f"tool {t.name}")
        return t.fn(**args)


def _canonical(args: dict[str, Any]) -> str:
    return json.dumps(to_jsonable_python(args, fallback=repr), sort_keys=True)

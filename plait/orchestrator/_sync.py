"""Calling plait's async entry points from synchronous code: scripts and notebooks.

``Graph.run`` and ``run_batch`` are coroutines: ``await`` them in async code.
A script has no event loop to await them in, and a notebook cell (Jupyter,
IPython) runs inside a loop that is already running, where ``anyio.run``
refuses to start a second one. :func:`call_sync` serves both: with no loop
running in this thread it runs the call on a new one here; inside a running
loop it runs the call on a new loop in a worker thread (an anyio blocking
portal) and blocks this thread until it ends. An exception raised here while
waiting (Ctrl-C in a notebook) cancels the call, so nothing runs on afterwards.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from anyio.from_thread import start_blocking_portal

__all__ = ["call_sync"]

T = TypeVar("T")


def call_sync(fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
    """Run the async function ``fn(*args, **kwargs)`` to its end and return its result (or raise its error)."""
    call = functools.partial(fn, *args, **kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(call)
    with start_blocking_portal(name="plait-sync") as portal:
        return portal.call(call)

"""Holding a batch input while it runs: take its lease, renew it, let go.

Workers sharing a checkpoint (processes on one machine with SQLite, on
several with PostgreSQL) each take an input's lease before running it. The
holder renews it every third of its time to live; a killed worker stops
renewing, so its inputs are taken over once their leases expire. A worker
that finds its lease taken over (it stalled longer than the lease) cancels
that input's run and leaves it to the new holder.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from plait.durable._base import Checkpointer

__all__ = ["worker_id", "while_leased", "LOST"]

log = logging.getLogger("plait.durable")
T = TypeVar("T")
LOST: Any = object()  # what while_leased returns when another worker took the input over


def worker_id() -> str:
    """Who holds a lease: host, process and a random part (two batches in one process are two workers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def while_leased(store: Checkpointer, key: str, owner: str, ttl: float,
                       work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` while renewing ``owner``'s lease on ``key`` (already taken); release it after.

    Returns :data:`LOST`, having cancelled ``work``, if the lease was taken over.
    """
    outcome: dict[str, Any] = {}

    async def renew(scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(ttl / 3)
            try:
                held = await store.call(store.renew_lease, key, owner, ttl)
            except Exception as exc:  # the store hiccuped: the work's own commits will say if it is gone
                log.warning("could not renew the lease on %s (%s); trying again in %.1fs", key, exc, ttl / 3)
                continue
            if not held:
                log.warning("lease on %s was taken over by another worker (this one stalled for longer than the "
                            "lease, %.1fs); leaving it to that worker", key, ttl)
                outcome["lost"] = True
                scope.cancel()
                return

    async def body(scope: anyio.CancelScope) -> None:
        try:
            outcome["value"] = await work()
        except Exception as exc:  # re-raised below, outside the task group (no ExceptionGroup)
            outcome["error"] = exc
        scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(renew, tg.cancel_scope)
            tg.start_soon(body, tg.cancel_scope)
    finally:
        if "lost" not in outcome:
            with anyio.CancelScope(shield=True):  # let go even when cancelled: another worker may take it now
                await store.call(store.release_lease, key, owner)
    if "lost" in outcome:
        return LOST
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]

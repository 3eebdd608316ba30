"""Holding a batch input while it runs: take its lease, renew it, let go.

Workers sharing a checkpoint (processes on one machine with SQLite, on
several with PostgreSQL) each take an input's lease before running it. The
holder renews it every third of its time to live; a killed worker stops
renewing, so its inputs are taken over once their leases expire. A worker
that finds its lease taken over (it stalled longer than the lease) cancels
that input's run and leaves it to the new holder; its writes go through a
:class:`LeasedStore`, which refuses them once the lease is lost, so a worker
frozen past its lease (where no renewal could run) writes nothing more for
that input: no node after the one it was in starts, and no result lands.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from plait.durable._base import Checkpointer, Payload, StoredNode, StoredRun
from plait.errors import LeaseLostError

__all__ = ["worker_id", "Lease", "LeasedStore", "while_leased", "LOST"]

log = logging.getLogger("plait.durable")
T = TypeVar("T")
LOST: Any = object()  # what while_leased returns when another worker took the input over


def worker_id() -> str:
    """Who holds a lease: host, process and a random part (two batches in one process are two workers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """``owner``'s hold on ``key`` (already taken), and until when this process may trust it without asking.

    The store's copy of the lease expires ``ttl`` seconds after a renewal was sent; this process trusts
    its hold for two thirds of that (the rest absorbs clock skew between machines), measured on its own
    monotonic clock from before the renewal was sent. A process frozen past that (a stop signal, a VM
    pause, a loop blocked by sync code) asks the store again before its next write, and if the hold was
    taken over, it is :attr:`lost` for good.
    """

    def __init__(self, store: Checkpointer, key: str, owner: str, ttl: float):
        self.store, self.key, self.owner, self.ttl = store, key, owner, ttl
        self.lost = False
        self._trusted_until = time.monotonic() + ttl * 2 / 3

    def renew(self) -> bool:
        """Extend the hold in the store (blocking); False, and lost for good, if it was taken over."""
        if self.lost:
            return False
        sent = time.monotonic()
        if self.store.renew_lease(self.key, self.owner, self.ttl):
            self._trusted_until = sent + self.ttl * 2 / 3
            return True
        self.lost = True
        return False

    def check(self) -> None:
        """Raise :class:`LeaseLostError` unless this process still holds the lease (asks the store only when
        its trust has run out)."""
        if self.lost or (time.monotonic() >= self._trusted_until and not self.renew()):
            raise LeaseLostError(f"the lease on {self.key} was taken over by another worker while this one "
                                 f"stalled for longer than the lease ({self.ttl:g}s); its work there is dropped")


class LeasedStore(Checkpointer):
    """A store seen through a lease: every write first checks the lease is still held (a fence), so a worker
    that stalled past its lease writes nothing more for that input; reads pass through."""

    def __init__(self, store: Checkpointer, lease: Lease):
        self._store, self._lease = store, lease
        self.group_commit = store.group_commit

    def get_run(self, run_id: str) -> StoredRun | None:
        return self._store.get_run(run_id)

    def put_run(self, run: StoredRun) -> None:
        self._lease.check()
        self._store.put_run(run)

    def list_runs(self, prefix: str = "") -> list[StoredRun]:
        return self._store.list_runs(prefix)

    def delete_run(self, run_id: str) -> None:
        self._lease.check()
        self._store.delete_run(run_id)

    def load_nodes(self, run_id: str) -> dict[str, StoredNode]:
        return self._store.load_nodes(run_id)

    def save_node(self, run_id: str, node: StoredNode) -> None:
        self._lease.check()
        self._store.save_node(run_id, node)

    def flush(self) -> None:
        self._lease.check()
        self._store.flush()

    def get_record(self, key: str) -> Payload | None:
        return self._store.get_record(key)

    def put_record(self, key: str, value: Payload) -> None:
        self._lease.check()
        self._store.put_record(key, value)

    def take_lease(self, key: str, owner: str, ttl: float) -> bool:
        return self._store.take_lease(key, owner, ttl)

    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        return self._store.renew_lease(key, owner, ttl)

    def release_lease(self, key: str, owner: str) -> None:
        self._store.release_lease(key, owner)

    async def call(self, method: Callable[..., T], *args: Any) -> T:
        return await self._store.call(method, *args)

    def close(self) -> None:
        """The store outlives the lease: its owner closes it."""


async def while_leased(lease: Lease, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` while renewing ``lease`` every third of its time to live; release it after.

    Returns :data:`LOST`, having cancelled ``work``, if the lease was taken over (found by the renewals,
    or by a write of ``work`` through a :class:`LeasedStore`).
    """
    store, key, ttl = lease.store, lease.key, lease.ttl
    outcome: dict[str, Any] = {}

    async def renew(scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(ttl / 3)
            try:
                held = await store.call(lease.renew)
            except Exception as exc:  # the store hiccuped: the work's own commits will say if it is gone
                log.warning("could not renew the lease on %s (%s); trying again in %.1fs", key, exc, ttl / 3)
                continue
            if not held:
                log.warning("lease on %s was taken over by another worker (this one stalled for longer than the "
                            "lease, %.1fs); leaving it to that worker", key, ttl)
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
        if not lease.lost:
            with anyio.CancelScope(shield=True):  # let go even when cancelled: another worker may take it now
                await store.call(store.release_lease, key, lease.owner)
    if lease.lost:
        return LOST
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]

"""The Ray actor of a batch run on Ray (see ``_ray``): built once, then runs the local batch loop.

The actor loads the graph (pickled, or imported from a ``module:attr``
target) and builds its backend from a picklable spec when it starts; a
failure there is the actor's creation error, which the driver reports in one
line. :meth:`Worker.run` is an async generator: Ray streams each result to
the driver as the worker settles it. This module never imports Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from plait.errors import PlaitError

__all__ = ["Worker"]


class Worker:
    """The actor: a graph and a backend built once, then ``run`` streams each input's result."""

    def __init__(self, graph: Any, backend: Any):
        self.failed: str | None = None
        try:
            self.graph, module = _load_graph(graph)
            self.backend = _build_backend(backend, module, graph)
        except Exception as exc:  # told by ready() as a plain task error: Ray's creation errors bury the cause
            text = str(exc).strip()
            self.failed = text.splitlines()[0][:300] if text else type(exc).__name__
            if not isinstance(exc, PlaitError):
                self.failed = f"{type(exc).__name__}: {self.failed}"

    def ready(self) -> int:
        if self.failed is not None:
            raise PlaitError(self.failed)
        return os.getpid()

    async def run(self, shared: tuple, pending: list[int]):  # an async generator: Ray streams what it yields
        from plait.durable._batch import _Batch
        from plait.durable._store import open_store

        checkpoint, items, batch_id, id_field, retry_failed, lease, run_options, concurrency, stale = shared
        store, _ = open_store(checkpoint)
        queue: asyncio.Queue = asyncio.Queue()
        done = object()

        async def work() -> None:
            try:
                batch = _Batch(self.graph, items, store, batch_id, id_field, retry_failed, lease, self.backend,
                               run_options)
                batch.stale = dict(stale)
                if self.backend is None:
                    await batch.take_and_run(pending, concurrency, queue.put_nowait)
                else:
                    async with self.backend:
                        await batch.take_and_run(pending, concurrency, queue.put_nowait)
                queue.put_nowait(done)
            except BaseException as exc:
                queue.put_nowait(exc)
                raise

        task = asyncio.create_task(work())
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):  # let it end before its store closes
                await task
            store.close()


def _load_graph(graph: Any) -> tuple[Any, Any]:
    if not isinstance(graph, str):
        return graph, None
    from plait._cli_inputs import UsageError, load_target

    try:
        return load_target(graph)
    except UsageError as exc:
        raise PlaitError(f"graph target {graph!r} on a Ray worker: {exc}") from None


def _build_backend(spec: Any, module: Any, target: Any) -> Any:
    if spec is None:
        if module is None:
            return None
        from plait._cli_inputs import UsageError, module_backend

        try:
            return module_backend(module, str(target).partition(":")[0])
        except UsageError as exc:
            raise PlaitError(str(exc)) from None
    if isinstance(spec, (list, tuple)):
        spec = ",".join(spec)
    if isinstance(spec, str):
        from plait.executors import backend_for

        return backend_for(spec)
    return spec()  # a factory (RayExecutor checked the spec's type)

"""Batch runs spread over Ray workers: ``run_batch(..., executor=RayExecutor(...), checkpoint="postgresql://…")``.

Each worker is a Ray actor that builds its backend once (from a model name
or URL, a URL list, or a picklable factory) and loads the graph once (from a
``module:attr`` target, or the graph itself, pickled), then runs the local
batch loop over the pending inputs: it takes each input by lease from the
shared store, runs it with plait's own runtime, commits, and streams the
result back. The driver settles each input's first result (results file,
progress bar, ``on_item``) exactly as a local batch does. Workers start at
evenly spaced offsets into the inputs, so they meet only near the end.

A killed worker costs only its unfinished inputs: the others take them over
once their leases expire (``lease=``). The driver stops its workers when
every input has a result (or when it is stopped itself, and Ray stops the
actors of a driver that dies); a batch stopped any way is resumed by running
it again from any machine that reaches the store.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from plait.durable._base import Checkpointer
from plait.durable._ray_worker import Worker
from plait.durable._store import is_url
from plait.errors import ConfigError, PlaitError

__all__ = ["RayExecutor"]

log = logging.getLogger("plait.durable")
_INSTALL = "pip install 'plait[ray]'"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(f"RayExecutor needs Ray, which is not installed: {_INSTALL}") from None
    return ray


@dataclasses.dataclass
class RayExecutor:
    """Where and how a batch's workers run on Ray (see the module docstring).

    ``address``: None starts a local cluster for this batch (stopped after
    it); ``"auto"`` or ``"ray://host:10001"`` joins a running one (where
    plait, and the graph's module, must be importable on every node).
    ``workers``: actors, each ``cpus_per_worker`` CPUs of the cluster.
    ``backend``: what each worker builds its backend from: a model name or
    server URL (``backend_for``), a list of URLs, a picklable factory, or
    None (the ``make_backend()`` of the ``graph`` target's module, if any).
    ``graph``: a ``module:attr`` target the workers import instead of
    receiving the graph pickled. ``start_timeout``: seconds for all workers
    to start (a cluster without enough free CPUs fails then, not never).
    ``init_options`` go to ``ray.init``, ``actor_options`` to each actor.
    """

    address: str | None = None
    workers: int = 2
    backend: str | list[str] | Callable[[], Any] | None = None
    graph: str | None = None
    cpus_per_worker: float = 1.0
    start_timeout: float = 300.0
    init_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    actor_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _ray()
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"RayExecutor(workers=) must be an integer >= 1, got {self.workers!r}")
        if not self.cpus_per_worker >= 0:
            raise ConfigError(f"RayExecutor(cpus_per_worker=) must be >= 0, got {self.cpus_per_worker!r}")
        spec = self.backend
        if not (spec is None or isinstance(spec, str) or callable(spec)
                or (isinstance(spec, (list, tuple)) and spec and all(isinstance(url, str) for url in spec))):
            raise ConfigError(f"RayExecutor(backend=) takes a model name, a server URL, a non-empty list of URLs or "
                             f"a factory (each worker builds its own backend), not {type(spec).__name__}")
        if not self.start_timeout > 0:
            raise ConfigError(f"RayExecutor(start_timeout=) must be > 0 seconds, got {self.start_timeout!r}")

    def check(self, checkpoint: Any, backend: Any) -> Any:
        """The checkpoint as workers open it; ConfigError for one they cannot share (or a driver-side backend)."""
        if backend is not None:
            raise ConfigError("with executor=RayExecutor(...) each worker builds its own backend: pass "
                             "RayExecutor(backend=MODEL_OR_URL or a factory) instead of run_batch(backend=...)")
        if checkpoint is None:
            raise ConfigError("executor=RayExecutor(...) needs checkpoint=: its workers take inputs by lease from a "
                             "shared store; give a postgresql:// URL (or an SQLite file on a local cluster)")
        if isinstance(checkpoint, Checkpointer):
            raise ConfigError(f"executor=RayExecutor(...) needs a checkpoint its workers can open themselves, not a "
                             f"{type(checkpoint).__name__} object: give a postgresql:// URL (or an SQLite file path "
                             "on a local cluster)")
        if is_url(checkpoint):
            return checkpoint
        if self.address is not None:
            raise ConfigError(f"SQLite checkpoint {str(checkpoint)!r} is a file on this machine, which Ray workers on "
                             f"cluster {self.address!r} cannot share: use a postgresql:// URL, or address=None "
                             "(--ray local) for a local cluster")
        return os.path.abspath(checkpoint)

    async def run(self, batch: Any, checkpoint: Any, pending: list[int], concurrency: int,
                  settle: Callable[[Any], None]) -> None:
        """Run ``batch``'s ``pending`` inputs on the workers; ``settle`` each input's first result (asyncio only)."""
        from plait.durable._batch import InvalidInput

        for i in pending:  # nothing to run: no worker needed
            if isinstance(batch.items[i], InvalidInput):
                settle(await batch._run_one(i))
        pending = [i for i in pending if batch.results[i] is None]
        if not pending:
            return
        ray = _ray()
        started = self._connect(ray)
        actors: list[Any] = []
        try:
            self._start(ray, batch, min(self.workers, len(pending)), actors)
            await self._until_ready(ray, actors)
            shared = ray.put((checkpoint, batch.items, batch.batch_id, batch.id_field, batch.retry_failed,
                              batch.lease, batch.run_options, concurrency, batch.stale))
            streams = [actor.run.remote(shared, _rotated(pending, k, len(actors))) for k, actor in enumerate(actors)]
            await _collect(ray, streams, batch, set(pending), settle)
        finally:
            for actor in actors:
                ray.kill(actor)
            if started:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        """Join (or start) the cluster unless this process already did; True if this call did (and so leaves it)."""
        if ray.is_initialized():
            return False
        options: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.WARNING)
        if self.address is None:
            options["num_cpus"] = max(os.cpu_count() or 1, int(self.workers * self.cpus_per_worker + 0.999))
        else:
            options["address"] = self.address
        options.update(self.init_options)
        where = "a local Ray cluster" if self.address is None else f"Ray cluster {self.address!r}"
        _probe(self.address, where)
        try:
            ray.init(**options)
        except Exception as exc:  # a wrong address, an unreachable cluster
            raise PlaitError(f"cannot connect to {where}: {_first_line(exc)}") from None
        return True

    def _start(self, ray: Any, batch: Any, count: int, actors: list[Any]) -> None:
        """Add ``count`` new actors to ``actors`` (each one as soon as it exists, so that it is stopped after)."""
        graph = _absolute_target(self.graph) if self.graph is not None else batch.graph
        options = dict(num_cpus=self.cpus_per_worker, **self.actor_options)
        actor = ray.remote(Worker).options(**options)
        for _ in range(count):
            actors.append(actor.remote(graph, self.backend))

    async def _until_ready(self, ray: Any, actors: list[Any]) -> None:
        refs = [actor.ready.remote() for actor in actors]
        with anyio.move_on_after(self.start_timeout):
            for ref in refs:
                try:
                    await ref
                except ray.exceptions.RayError as exc:
                    raise PlaitError(f"a Ray worker could not start: {_cause(exc)}") from None
            return
        raise PlaitError(f"{len(actors)} Ray workers of {self.cpus_per_worker:g} CPU each did not all start within "
                         f"{self.start_timeout:g}s: the cluster lacks free CPUs (see `ray status`); use fewer "
                         "workers (--workers) or add machines")


def _probe(address: str | None, where: str, timeout: float = 10.0) -> None:
    """Fail fast on a HOST:PORT nothing answers at (``ray.init`` would wait for it for minutes)."""
    host, _, port = (address or "").removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # None, "auto": ray.init itself says when there is no cluster
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise PlaitError(f"cannot connect to {where}: nothing answers at {host}:{port} ({exc.strerror or exc}); "
                         "check the address (ray status on the head node prints it)") from None


def _rotated(pending: list[int], k: int, n: int) -> list[int]:
    """Worker ``k`` of ``n`` walks the inputs from its own offset, so workers do not contend for the same ones."""
    start = k * len(pending) // n
    return pending[start:] + pending[:start]


async def _collect(ray: Any, streams: list[Any], batch: Any, left: set[int], settle: Callable[[Any], None]) -> None:
    """Settle results as the workers stream them; a dead worker's inputs are left to the others."""
    dead: list[str] = []
    errors: list[BaseException] = []

    async def consume(k: int, stream: Any, scope: anyio.CancelScope) -> None:
        try:
            async for ref in stream:
                item = await ref
                if item.index in left:  # the first report; a worker may find an input another just finished
                    left.discard(item.index)  # before the runner's own report arrives: either is this batch's work
                    settle(dataclasses.replace(item, resumed=False) if item.resumed else item)
                if not left:
                    scope.cancel()
                    return
        except ray.exceptions.RayActorError as exc:
            dead.append(f"worker {k}: {_cause(exc)}")
            log.warning("Ray worker %d of %d died (%s); the others take its inputs over when their leases expire "
                        "(%.1fs)", k, len(streams), _cause(exc), batch.lease)
            if len(dead) == len(streams) and left:
                errors.append(PlaitError(
                    f"all {len(streams)} Ray workers died with {len(left)} inputs unfinished (first: {dead[0]}); "
                    "run the same batch again to resume it (finished inputs are kept in the checkpoint)"))
                scope.cancel()
        except ray.exceptions.RayTaskError as exc:  # the store or the results failed in a worker: report it plainly
            errors.append(exc.cause if isinstance(exc.cause, BaseException) else PlaitError(_cause(exc)))
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for k, stream in enumerate(streams):
            tg.start_soon(consume, k, stream, tg.cancel_scope)
    if errors:
        raise errors[0]


def _absolute_target(target: str) -> str:
    """A ``file.py:attr`` target with the file's absolute path (workers may start in another directory)."""
    module, sep, attr = target.partition(":")
    if module.endswith(".py") or Path(module).is_file():
        module = os.path.abspath(module)
    return f"{module}{sep}{attr}"


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, PlaitError):
        return _first_line(cause)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {_first_line(cause)}"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__

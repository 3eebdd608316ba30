"""A backend over several OpenAI-compatible servers of one model (vLLM replicas): routing, failover, probing back.

Each replica is an :class:`OpenAIBackend` that makes one attempt per request
(no retries of its own); the pool decides where each attempt goes:

- ``routing`` picks a replica among those that are up (see ``_pool_routing``);
- a replica that fails an attempt (refused or dropped connection, 5xx or
  429, no reply within ``attempt_timeout``) is taken out and the request goes
  to another one, at most ``max_retries`` times, all under the request's total
  ``timeout``: failover never lets a request outlive its deadline;
- a replica taken out is probed back in (``GET /v1/models``, which any
  OpenAI-compatible server answers) ``probe_after`` seconds later, doubling
  after each failed probe up to ``max_probe_after``; when every replica is out
  a request waits for the earliest probe (within its deadline).

Every replica must serve the pool's model: ``model=``, or else the first model
the first replica to answer lists. A replica that does not list it is refused
with a :class:`~plait.BackendError` on first contact: records keyed by the
pool's :attr:`identity` must not mix answers of different models.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from plait.errors import BackendError, ConfigError
from plait.executors._base import Backend, Completion, Request, first_error, serve_concurrently
from plait.executors._constraints import check_request_constraint
from plait.executors._openai import OpenAIBackend, ServerUnavailable, _check_options
from plait.executors._pool_routing import ROUTINGS, Routing, make_router
from plait.executors._pool_urls import check_urls

__all__ = ["EndpointPool"]

log = logging.getLogger("plait.pool")

PROBE_TIMEOUT = 5.0  # seconds a probe waits (at most attempt_timeout): a server that is up answers /models at once


class _Replica:
    """One server of the pool and what the pool knows of it."""

    def __init__(self, url: str, backend: OpenAIBackend):
        self.url, self.backend = url, backend
        self.in_flight = 0
        self.served = 0  # requests it completed (tests and the benchmark read it)
        self.down_until: float | None = None  # None: up; else when to probe it back in
        self.failures = 0  # consecutive failed attempts and probes: the probe backoff doubles with each
        self.reason = ""  # why it was taken out last
        self.admitted = False  # its model list was checked
        self.probe: anyio.Event | None = None  # set while a probe of it is under way; fires when it ends


class EndpointPool(Backend):
    """Serve requests from several OpenAI-compatible servers of one model (see the module docstring).

    ``urls`` are the servers' root (or ``/v1``) URLs, as a list or one comma-separated
    string. ``routing`` is ``"program"`` (default: a run stays on one replica),
    ``"prefix"``, ``"least-loaded"`` or ``"round-robin"``. ``timeout`` is the total
    deadline of a request across replicas; ``attempt_timeout`` (default half of it)
    bounds one attempt, so a replica that hangs is left in time to try another.
    Other ``options`` (``api_key``, ``idle_timeout``, ``max_response_bytes``,
    ``stream``, ``max_connections``) go to each replica's :class:`OpenAIBackend`.
    """

    name = "pool"
    supports_structured_output = True
    supports_logprobs = True
    supports_streaming = True

    def __init__(self, urls: Sequence[str] | str, model: str | None = None, *, routing: Routing = "program",
                 timeout: float = 120.0, attempt_timeout: float | None = None, max_retries: int = 3,
                 probe_after: float = 1.0, max_probe_after: float = 30.0, prefix_chars: int = 1024,
                 load_factor: float = 1.25, **options: Any):
        self.urls = check_urls(urls)
        if routing not in ROUTINGS:
            raise ConfigError(f"EndpointPool: routing={routing!r} is not one of {', '.join(map(repr, ROUTINGS))}")
        attempt_timeout = timeout / 2 if attempt_timeout is None else attempt_timeout
        _check_options(positive={"timeout": timeout, "attempt_timeout": attempt_timeout,
                                 "probe_after": probe_after, "max_probe_after": max_probe_after,
                                 "prefix_chars": prefix_chars, "load_factor": load_factor},
                       non_negative={"max_retries": max_retries}, who="EndpointPool")
        self.model, self._declared_model = model, model
        self.routing, self.timeout, self.attempt_timeout = routing, timeout, min(attempt_timeout, timeout)
        self.max_retries, self.probe_after, self.max_probe_after = max_retries, probe_after, max_probe_after
        self.replicas = [_Replica(url, OpenAIBackend(url, model, timeout=self.attempt_timeout, max_retries=0,
                                                     **options)) for url in self.urls]
        self._router = make_router(routing, prefix_chars=prefix_chars, load_factor=load_factor)
        self._started = False

    @property
    def identity(self) -> str:
        """The declared model; without ``model=``, the first model the pool's servers list (named by their URLs)."""
        return self._declared_model or f"first model listed by {','.join(r.backend.base_url for r in self.replicas)}"

    async def start(self) -> None:
        """Contact every replica: check each serves the pool's model; those that do not answer are taken out."""
        if self._started:
            return
        problems: dict[str, str] = {}

        async def contact(replica: _Replica) -> None:
            try:
                await self._admit(replica)
            except ServerUnavailable as exc:
                problems[replica.url] = str(exc)
                self._take_out(replica, str(exc))

        if self.model is None:  # the first replica that answers names the model; the others must serve it
            for replica in self.replicas:
                await contact(replica)
                if self.model is not None:
                    break
        try:
            async with anyio.create_task_group() as tg:
                for replica in self.replicas:
                    if not replica.admitted and replica.url not in problems:
                        tg.start_soon(contact, replica)
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        if len(problems) == len(self.replicas):
            raise BackendError(f"EndpointPool: none of its {len(self.replicas)} server(s) answered: "
                               + "; ".join(problems.values()))
        self._started = True

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.backend.aclose()
        self._started = False

    async def generate(self, requests: list[Request]) -> list[Completion]:
        for i, request in enumerate(requests):
            check_request_constraint(request, i)
        await self.start()
        return await serve_concurrently(
            requests, lambda request: self._serve(request, lambda backend: backend.generate_one(request)))

    async def stream(self, request: Request, on_text: Callable[[str], Any]) -> Completion:
        """Stream from one replica; a stream that already handed over text is never moved to another."""
        check_request_constraint(request)
        await self.start()
        delivered = False

        def relay(piece: str) -> Any:
            nonlocal delivered
            delivered = True
            return on_text(piece)

        return await self._serve(request, lambda backend: backend.stream(request, relay), lambda: not delivered)

    async def _serve(self, request: Request, send: Callable[[OpenAIBackend], Awaitable[Completion]],
                     movable: Callable[[], bool] = lambda: True) -> Completion:
        """Send ``request`` to replicas in turn until one answers, under the total deadline."""
        failures: list[str] = []
        with anyio.CancelScope(deadline=anyio.current_time() + self.timeout) as scope:
            for _ in range(self.max_retries + 1):
                replica = await self._choose(request)
                replica.in_flight += 1
                try:
                    if not replica.admitted:
                        await self._admit(replica)
                    completion = await send(replica.backend)
                except ServerUnavailable as exc:
                    if replica.down_until is None:  # (another request may have taken it out already)
                        self._take_out(replica, str(exc))
                    failures.append(str(exc))
                    if not movable():
                        raise BackendError(f"{exc} (after part of the stream was delivered: not moved to "
                                           "another server)") from None
                    continue
                finally:
                    replica.in_flight -= 1
                replica.failures, replica.served = 0, replica.served + 1
                return completion
        tried = f"; {len(failures)} attempt(s) failed: {' | '.join(failures)}" if failures else ""
        if scope.cancelled_caught:
            raise BackendError(f"EndpointPool did not complete the request within timeout={self.timeout:g}s "
                               f"(a total deadline across its servers){tried}")
        down = "; ".join(f"{r.url}: {r.reason}" for r in self.replicas if r.down_until is not None)
        raise BackendError(f"EndpointPool could not serve the request{tried or ''}; servers out: {down or 'none'}")

    async def _choose(self, request: Request) -> _Replica:
        """A replica for the next attempt, routed among those up, after probing those due.

        When none is up, wait for the next one due (or a probe under way) and
        probe it; the caller's deadline bounds the waiting.
        """
        while True:
            now = anyio.current_time()
            for replica in self.replicas:
                if replica.down_until is not None and replica.down_until <= now and replica.probe is None:
                    await self._probe(replica)
            up = [r for r in self.replicas if r.down_until is None]
            if up:
                return self._router.pick(request, up)
            probing = [r.probe for r in self.replicas if r.probe is not None]
            if probing:
                await probing[0].wait()
            else:
                await anyio.sleep(min(r.down_until or now for r in self.replicas) - now)

    async def _probe(self, replica: _Replica) -> None:
        """Ask a replica taken out for its models (at most ``PROBE_TIMEOUT``): back in if it serves the model."""
        replica.probe, replica.admitted = anyio.Event(), False
        log.info("probing %s", replica.url)
        try:
            with anyio.move_on_after(min(PROBE_TIMEOUT, self.attempt_timeout)) as scope:
                await self._admit(replica)
            if scope.cancelled_caught:
                self._take_out(replica, f"no answer to a probe within {min(PROBE_TIMEOUT, self.attempt_timeout):g}s")
            else:
                replica.down_until, replica.failures = None, 0
                log.info("%s is back in the pool", replica.url)
        except ServerUnavailable as exc:
            self._take_out(replica, str(exc))
        finally:
            replica.probe.set()
            replica.probe = None

    async def _admit(self, replica: _Replica) -> None:
        """First contact: ``replica`` must list the pool's model (which the first answer decides when not given)."""
        try:
            models = await replica.backend.list_models()
        except ServerUnavailable:
            raise
        except BackendError as exc:  # a reply that is not a model list: a server that cannot serve here
            raise ServerUnavailable(str(exc)) from None
        if self.model is None:
            self.model = models[0]
        if self.model not in models:
            first = next((r.url for r in self.replicas if r.admitted), "model=")
            shown = ", ".join(repr(m) for m in models[:5]) + (", ..." if len(models) > 5 else "")
            raise BackendError(f"EndpointPool: {replica.url} serves {shown}, not {self.model!r} (named by {first}); "
                               "every server of a pool must serve the same model: fix the URL list or pass model=")
        replica.backend.model = self.model
        replica.admitted = True

    def _take_out(self, replica: _Replica, reason: str) -> None:
        wait = min(self.probe_after * 2 ** min(replica.failures, 30), self.max_probe_after)
        replica.failures += 1
        replica.down_until, replica.reason = anyio.current_time() + wait, reason
        log.warning("taking %s out of the pool for %gs: %s", replica.url, wait, reason)


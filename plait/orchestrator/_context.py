"""The run context: what a node sees of the run it is part of."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, overload

from plait.errors import BackendError, BudgetExceededError, ConfigError
from plait.executors._base import Backend, Completion, Request
from plait.orchestrator._events import Custom, Event, ThreadAbandoned, TokensUsed
from plait.orchestrator._interrupts import interrupt
from plait.orchestrator._models import DEFAULT, unknown_model
from plait.orchestrator._record import TokenUsage
from plait.orchestrator._threads import Lane, in_worker_thread

if TYPE_CHECKING:
    from plait.orchestrator._runtime import _RunState

__all__ = ["RunContext"]


class RunContext:
    """Handed to any node parameter annotated ``RunContext`` (or named ``ctx``).

    Call the LLM through :meth:`generate` rather than the backend directly: it
    enforces the run's token budget, counts tokens per node and per model and
    emits :class:`~plait.orchestrator.TokensUsed` events. ``model`` is the
    name of the backend this node's requests go to (None: the run's default
    ``backend=``); ``models`` the names the run offers (see ``_models.py``).
    """

    __slots__ = ("_state", "node", "iteration", "tokens", "model", "_lane", "_activation", "_interrupts", "_origin")

    def __init__(self, state: _RunState, node: str, iteration: int = 0, activation: int = 0,
                 model: str | None = None):
        self._state = state
        self.node = node  # full name, e.g. "outer/inner[2]"
        self.iteration = iteration
        self.tokens: TokenUsage | None = None  # tokens of this activation (set on first report)
        self.model = model  # the node's backend name (None: the default backend)
        self._lane: Lane | None = None  # this activation's worker-thread lane (sync nodes)
        self._activation = activation  # the how-manyth activation of this full name in the run (interrupt ids)
        self._interrupts = 0  # interrupts asked so far by this activation
        self._origin: RunContext | None = None  # the context a using() view was made from (None: not a view)

    @property
    def run_id(self) -> str:
        return self._state.run_id

    @property
    def inputs(self) -> dict[str, Any]:
        """The run's top-level input values."""
        return self._state.inputs

    @property
    def models(self) -> tuple[str, ...]:
        """Names of the run's named backends (``backends=``), in the order given."""
        return tuple(name for name in self._state.backends if name != DEFAULT)

    @property
    def backend(self) -> Backend:
        """The backend of this node's model (the run's default backend when it has none)."""
        return self._backend(None)[0]

    def using(self, model: str | None) -> RunContext:
        """This context with its requests going to backend ``model`` (None: unchanged); tokens still count here.

        For strategies whose parts use different models (a planner and a solver, a judge).
        """
        if model is None or model == self.model:
            return self
        if self.tokens is None:  # shared with the view, so that the activation's count stays whole
            self.tokens = TokenUsage()
        view = copy.copy(self)
        view.model = model
        view._origin = self._origin or self  # interrupts are numbered once per activation, views included
        return view

    def _enclose(self, inner: RunContext) -> RunContext:
        """The context a node of a subgraph run by this node gets (``inner``): unchanged here.

        A context that keeps an account (a node's token budget, see ``plait/planners/_spending.py``)
        returns a view of ``inner`` that spends from that account, so the budget holds inside subgraphs too.
        """
        return inner

    def _backend(self, model: str | None) -> tuple[Backend, str]:
        """The backend for ``model`` (None: this node's) and the name its tokens are counted under."""
        name = model if model is not None else self.model or DEFAULT
        backend = self._state.backends.get(name)
        if backend is not None:
            return backend, name
        if name == DEFAULT:
            raise BackendError(
                f"node {self.node!r} needs an LLM backend but the run has none; pass backend=... to run()"
            )
        raise ConfigError(unknown_model(self.node, name, self._state.backends))

    @property
    def tokens_left(self) -> int | None:
        """Tokens of the run's budget neither spent nor reserved by requests in flight (None when unlimited)."""
        budget = self._state.budget
        return None if budget.limit is None else max(budget.limit - budget.spent.total - budget.reserved, 0)

    def check_budget(self) -> None:
        """Raise :class:`~plait.BudgetExceededError` if the budget is spent (call before starting LLM work)."""
        budget = self._state.token_budget
        if budget is not None and self._state.tokens.total >= budget:
            raise BudgetExceededError(self._state.tokens.total, budget, self.node)

    @overload
    async def generate(self, request: Request, *, model: str | None = None) -> Completion: ...
    @overload
    async def generate(self, request: list[Request], *, model: str | None = None) -> list[Completion]: ...

    async def generate(self, request: Request | list[Request], *,
                       model: str | None = None) -> Completion | list[Completion]:
        """Send one request (or a batch) to backend ``model`` (None: this node's), within the run's token budget."""
        single = isinstance(request, Request)
        batch: list[Request] = [request] if isinstance(request, Request) else list(request)
        self.check_budget()
        backend, name = self._backend(model)
        batch = [self._labelled(r) for r in batch]
        need = await self._reserve(batch, backend)
        try:
            completions = await backend.generate(batch)
        finally:
            self._state.budget.release(need)
        for completion in completions:
            self.report_tokens(completion.prompt_tokens, completion.completion_tokens, completion.cached_tokens,
                               completion.model, model_name=name)
        return completions[0] if single else completions

    async def generate_stream(self, request: Request, on_text: Callable[[str], Any], *,
                              model: str | None = None) -> Completion:
        """Like :meth:`generate` for one request, calling ``on_text(chunk)`` as text arrives (see ``Backend.stream``)."""
        self.check_budget()
        backend, name = self._backend(model)
        request = self._labelled(request)
        need = await self._reserve([request], backend)
        try:
            completion = await backend.stream(request, on_text)
        finally:
            self._state.budget.release(need)
        self.report_tokens(completion.prompt_tokens, completion.completion_tokens, completion.cached_tokens,
                           completion.model, model_name=name)
        return completion

    def _labelled(self, request: Request) -> Request:
        """``request`` with this node as its tag and this run as its routing key, unless it has its own."""
        update = {k: v for k, v in (("tag", self.node), ("route", self.run_id)) if not getattr(request, k)}
        return request.model_copy(update=update) if update else request

    async def _reserve(self, batch: list[Request], backend: Backend) -> int:
        """Reserve ``batch``'s worst case against the budget before sending it (see ``_budget.py``)."""
        budget = self._state.budget
        if budget.limit is None:
            return 0
        need = budget.worst_case(batch, backend)
        await budget.reserve(need, self.node)
        return need

    def report_tokens(self, prompt: int = 0, completion: int = 0, cached: int = 0, model: str = "", *,
                      model_name: str | None = None) -> None:
        """Count tokens spent by this node (done for you by :meth:`generate`).

        ``model``: who answered (the backend's model id); ``model_name``: the
        run's name for the backend (default: this node's model, else ``"default"``).
        """
        _not_in_worker_thread("report_tokens", self.node)
        state = self._state
        name = model_name or self.model or DEFAULT
        state.tokens.add(prompt, completion, cached)
        _usage(state.tokens_by_model, name).add(prompt, completion, cached)
        if self.tokens is None:
            self.tokens = TokenUsage()
        self.tokens.add(prompt, completion, cached)
        record = state.records.get(self.node) or state.records.get(_base_name(self.node))
        if record is not None:
            record.tokens.add(prompt, completion, cached)
            _usage(record.tokens_by_model, name).add(prompt, completion, cached)
        state.emit(TokensUsed, node=self.node, prompt_tokens=prompt, completion_tokens=completion,
                   cached_tokens=cached, run_total=state.tokens.total, model=model, model_name=name)

    async def remember(self, kind: str, key: str, compute: Callable[[], Awaitable[Any]], returns: Any = Any) -> Any:
        """``await compute()``, recorded when the run has a checkpoint.

        For side effects that a resumed or replayed run must not repeat (tool
        calls): the k-th call with the same ``kind`` and ``key`` in a run is
        served from the record when one exists. The result is stored as JSON
        and loaded back as ``returns`` (its declared type). Without a
        checkpoint this is just ``await compute()``.
        """
        return await self._state.journal.remember(kind, key, compute, returns)

    async def interrupt(self, question: Any, returns: Any = Any) -> Any:
        """Ask a person: the answer given on resume, or stop the run with status ``"interrupted"``.

        ``question`` is JSON data listed in ``RunResult.interrupts``; the
        answer, given as ``run(..., resume={id: answer})``, is validated as
        ``returns`` and recorded, so it is asked once per run. Needs a checkpoint.
        """
        _not_in_worker_thread("interrupt", self.node)
        return await interrupt(self._origin or self, question, returns)

    def emit(self, name: str | type[Event], **data: Any) -> None:
        """Emit a :class:`~plait.orchestrator.Custom` event named ``name`` (votes, retractions, plan steps...), or, given
        a typed event class such as :class:`~plait.orchestrator.VoteTallied`, that event with ``data`` as its fields
        (this node filled in)."""
        _not_in_worker_thread("emit", self.node)
        if isinstance(name, str):
            self._state.emit(Custom, node=self.node, name=name, data=data)
        elif isinstance(name, type) and issubclass(name, Event) and "node" in name.__dataclass_fields__:
            self._state.emit(name, node=self.node, **data)
        else:
            raise TypeError(f"emit() takes an event name (str) or a node event class such as VoteTallied, "
                            f"got {name!r}")

    def _worker_lane(self) -> Lane:
        """The lane this activation's sync attempts run through: a retry waits for the attempt it replaces."""
        if self._lane is None:
            self._lane = Lane(on_abandon=self._abandoned)
        return self._lane

    def _abandoned(self, running: int) -> None:
        state = self._state
        record = state.records.get(self.node) or state.records.get(_base_name(self.node))
        if record is not None:
            record.abandoned_threads += 1
        state.emit(ThreadAbandoned, node=self.node, running=running)


def _not_in_worker_thread(method: str, node: str) -> None:
    if in_worker_thread():  # run state belongs to the event loop; an abandoned attempt must not touch it
        raise RuntimeError(f"ctx.{method}() was called from the worker thread of sync node {node!r}; "
                           "make the node async, or pass blocking=False to run it on the event loop")


def _usage(by_model: dict[str, TokenUsage], name: str) -> TokenUsage:
    usage = by_model.get(name)
    if usage is None:
        usage = by_model[name] = TokenUsage()
    return usage


def _base_name(name: str) -> str:
    return name.split("[", 1)[0] if name.endswith("]") else name

"""Nodes: the units of work in a graph.

A node is a typed callable. Its parameters are its inputs (fed by edges or by
the run input), its return annotation is its output type. Write nodes as plain
functions (``graph.node`` wraps them in :class:`FunctionNode`) or subclass
:class:`Node` and define ``run``; ready-made reasoning nodes (chain steps,
votes, planners, solvers) are such subclasses.

A parameter annotated :class:`~plait.RunContext` (or named ``ctx``) receives
the run context instead of data: the backend, token accounting, events.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import TypeAdapter

from plait._retry import RetryPolicy
from plait.errors import ConfigError, GraphError
from plait.orchestrator._models import check_model_name
from plait.orchestrator._threads import run_in_thread

if TYPE_CHECKING:
    from plait.orchestrator._context import RunContext

__all__ = ["Node", "FunctionNode", "RetryPolicy", "Route", "Param", "Signature", "MISSING"]

T = TypeVar("T")
OnError = Literal["raise", "skip"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:  # unpickled as the one MISSING (graphs are pickled to send them to Ray workers)
        return "MISSING"


MISSING: Any = _Missing()


@dataclasses.dataclass(frozen=True, slots=True)
class Route(Generic[T]):
    """Returned by a routing node: send ``value`` to ``to`` (a node or its name, or a route key).

    Annotate the node ``-> Route[X]`` so the graph knows the type of ``value``.
    """

    to: Any
    value: T = None  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True)
class Param:
    """One input of a node."""

    name: str
    annotation: Any = Any
    default: Any = MISSING

    @property
    def required(self) -> bool:
        return self.default is MISSING

    @property
    def adapter(self) -> TypeAdapter | None:
        return _adapter(self.annotation)


_ADAPTERS: dict[Any, TypeAdapter | None] = {}


def _adapter(annotation: Any) -> TypeAdapter | None:
    """A cached pydantic adapter for an annotation (None when anything goes)."""
    try:
        return _ADAPTERS[annotation]
    except KeyError:
        pass
    except TypeError:  # unhashable annotation
        return TypeAdapter(annotation)
    adapter = None if annotation is Any or annotation is inspect.Parameter.empty else TypeAdapter(annotation)
    _ADAPTERS[annotation] = adapter
    return adapter


class Signature(typing.NamedTuple):
    """What a node takes and gives: data inputs, output type, and the name of its context parameter."""

    params: dict[str, Param]
    output: Any
    context_param: str | None = None


class Node:
    """Base class of every node.

    Subclasses define ``run(self, <inputs...>) -> Output`` (sync or async); the
    signature is read once to learn inputs and output type. Policies:

    * ``timeout``: seconds per attempt (None: no limit);
    * ``retry``: a :class:`RetryPolicy` (None: one attempt);
    * ``max_concurrency``: how many activations of this node may run at once
      (matters for mapped nodes and loops);
    * ``on_error``: ``"raise"`` stops the whole run with
      :class:`~plait.NodeFailedError`; ``"skip"`` records the failure, skips
      the nodes that depend on this one and lets independent branches finish;
    * ``fallback``: a value used as the output when the node fails (the run goes on);
    * ``blocking``: a sync ``run`` runs in a worker thread (default True), so
      it stalls no other node and its ``timeout`` holds (a thread cannot be
      killed: a timed-out one is abandoned, see ``_threads.py``);
      ``blocking=False`` declares it cheap and runs it on the event loop (no
      thread hand-off, about 20 us less per call, but no timeout possible).
      Async ``run`` methods are awaited on the loop either way.
    * ``model``: the name of the run's backend this node's requests go to
      (``run(..., backends={"small": ...})``; None: the default ``backend=``,
      or the model of the subgraph node it runs in); see ``_models.py``;
    * ``durable``: with a checkpoint, commit the node's output (JSON, loaded
      back with its declared output type) and restore it on resume. ``False``
      for outputs that JSON cannot hold (locks, clients): the node runs again
      on resume, and so does each node fed by it.
    """

    name: str = ""
    #: True for nodes that run other nodes inside (subgraphs): they take no slot of the run's
    #: ``max_concurrency`` limiter, or their inner nodes would wait on them forever.
    runs_nodes: bool = False

    def __init__(
        self,
        name: str | None = None,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
        on_error: OnError = "raise",
        fallback: Any = MISSING,
        blocking: bool = True,
        durable: bool = True,
        model: str | None = None,
    ):
        self.name = name or self.name or _snake(type(self).__name__)
        self.model = check_model_name(model, self.name)
        if timeout is not None and timeout <= 0:
            raise GraphError(f"node {self.name!r}: timeout must be > 0 seconds, got {timeout}")
        if max_concurrency is not None and max_concurrency < 1:
            raise GraphError(f"node {self.name!r}: max_concurrency must be >= 1, got {max_concurrency}")
        if on_error not in ("raise", "skip"):
            raise GraphError(f"node {self.name!r}: on_error must be 'raise' or 'skip', got {on_error!r}")
        self.timeout = timeout
        self.retry = retry
        self.max_concurrency = max_concurrency
        self.on_error = on_error
        self.fallback = fallback
        self.blocking = blocking
        self.durable = durable
        self._signature: Signature | None = None
        if timeout is not None and self._runs_inline():
            raise GraphError(f"node {self.name!r}: blocking=False runs this sync function on the event loop, "
                             "where its timeout cannot stop it; drop blocking=False or the timeout")

    def _runs_inline(self) -> bool:
        """True when attempts call a sync function on the event loop (``blocking=False``)."""
        if self.blocking or type(self).invoke is not Node.invoke:
            return False
        fn = self.__dict__.get("fn") or getattr(self, "run", None)
        return fn is not None and not inspect.iscoroutinefunction(fn)

    def models_used(self) -> set[str]:
        """Names of the run's backends this node asks for: its ``model``; composite nodes add their parts'."""
        model = getattr(self, "model", None)  # (a subclass that skipped Node.__init__ has none)
        return {model} if model else set()

    # -- signature -------------------------------------------------------
    def _callable(self) -> Callable[..., Any]:
        run = getattr(self, "run", None)
        if run is None:
            raise GraphError(f"node {self.name!r} ({type(self).__name__}) defines no run() method")
        return run

    def signature(self) -> Signature:
        """Inputs and output of this node, read from ``run``'s annotations.

        Override to declare them dynamically (a prompt template whose variables
        are the inputs, say); ``invoke`` then receives those inputs as kwargs.
        A node that overrides both ``signature`` and ``invoke`` needs no ``run``.
        """
        return _signature_of(self._callable(), self.name)

    def _read_signature(self) -> Signature:
        if self._signature is None:
            self._signature = self.signature()
        return self._signature

    @property
    def params(self) -> dict[str, Param]:
        """Data inputs by name (the context parameter excluded)."""
        return self._read_signature()[0]

    @property
    def output_type(self) -> Any:
        """The return annotation (``Any`` when absent; the value type for ``Route[X]``)."""
        return self._read_signature()[1]

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self._callable())

    def _prepare(self) -> tuple[Callable[..., Any], bool, str | None]:
        prepared = self.__dict__.get("_prepared")
        if prepared is None:
            prepared = self._prepared = (self._callable(), self.is_async, self._read_signature().context_param)
        return prepared

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        """Run one attempt with already-validated inputs."""
        fn, is_async, ctx_name = self._prepare()
        if ctx_name is not None:
            kwargs = {**kwargs, ctx_name: ctx}
        if is_async:
            return await fn(**kwargs)
        if not self.blocking:
            return fn(**kwargs)
        lane = ctx._worker_lane() if hasattr(ctx, "_worker_lane") else None
        return await run_in_thread(functools.partial(fn, **kwargs), lane=lane, name=self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class FunctionNode(Node):
    """A node that calls a plain (sync or async) function."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, **policy: Any):
        if not callable(fn):
            raise GraphError(f"a node must be callable, got {fn!r}")
        self.fn = fn
        super().__init__(name or getattr(fn, "__name__", None) or "node", **policy)

    def _callable(self) -> Callable[..., Any]:
        return self.fn


def _signature_of(fn: Callable[..., Any], name: str) -> Signature:
    from plait.orchestrator._context import RunContext

    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # unresolvable forward references
        raise GraphError(f"node {name!r}: cannot resolve type hints: {exc}") from exc
    params: dict[str, Param] = {}
    ctx_name = None
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise GraphError(f"node {name!r}: *args/**kwargs parameters are not supported; name each input")
        annotation = hints.get(p.name, Any)
        if annotation is RunContext or (p.name == "ctx" and p.name not in hints):
            ctx_name = p.name
            continue
        default = MISSING if p.default is p.empty else p.default
        params[p.name] = Param(p.name, annotation, default)
    output = hints.get("return", Any)
    if typing.get_origin(output) is Route:
        (output,) = typing.get_args(output)
    elif output is Route:
        output = Any
    return Signature(params, output, ctx_name)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)

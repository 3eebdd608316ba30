"""What the runtime needs from durability: the :class:`Journal` protocol and a journal that does nothing.

The runtime calls only these methods, on every run: a run without a
checkpoint gets :data:`NO_JOURNAL`, whose methods do nothing, so there is no
``if journal:`` branch in the runtime. ``plait.durable`` implements the
protocol over a checkpoint store (and records and replays LLM responses with a
backend wrapper that :meth:`Journal.begin` returns).

The orchestrator never imports ``plait.durable`` (arrows point down).
``Run(checkpoint=..., run_id=..., replay=...)`` hands those options to the
*opener* registered with :func:`set_journal_opener`; ``plait.durable`` registers
its own when it is imported, which importing any part of ``plait`` does (the
top-level package imports it). Another implementation (a test double, another
store) registers its opener the same way.

Human-in-the-loop interrupts fit the protocol as it is: an answer is a
:meth:`Journal.remember` record (recorded on resume, served on replay), and a
run stopped for one finishes with ``status="interrupted"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from plait.errors import ConfigError

if TYPE_CHECKING:
    from plait.executors._base import Backend
    from plait.orchestrator._graph import Graph, _CompiledGraph
    from plait.orchestrator._node import Node
    from plait.orchestrator._record import TokenUsage

__all__ = ["Journal", "Restored", "NO_JOURNAL", "set_journal_opener", "open_journal", "fingerprint"]


class Restored(NamedTuple):
    """A committed node activation, decoded: its outcome (a value, or a Route naming its target) and its cost."""

    outcome: Any
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0
    attempts: int = 1


class Journal(Protocol):
    """The durable side of one run, as the runtime sees it."""

    @property
    def run_id(self) -> str | None:
        """The run's id (None without a checkpoint)."""

    def recorded_input(self) -> dict[str, Any] | None:
        """The input the run was first started with (typed like the graph's inputs), or None."""

    def begin(self, inputs: dict[str, Any], backends: dict[str, Backend]) -> dict[str, Backend]:
        """Start (or resume) the run with ``inputs``; return the backends its nodes reach through ``ctx``, by name.

        ``backends`` maps the run's backend names to backends (``"default"``:
        its ``backend=``); a replay returns the recorded run's names.
        """

    def lookup(self, node: Node, name: str, kwargs: dict[str, Any]) -> tuple[Any, Restored | None]:
        """An opaque key for this activation of ``name`` (given to :meth:`commit`), and what it restores, if any."""

    def commit(self, key: Any, node: Node, outcome: Any, tokens: TokenUsage | None, duration: float,
               attempts: int) -> None:
        """Save a finished activation before any dependant starts (raises CheckpointError if it cannot)."""

    async def remember(self, kind: str, key: str, compute: Callable[[], Awaitable[Any]], returns: Any = Any) -> Any:
        """``await compute()`` once per position in the run; later runs of it reuse the recorded result."""

    def finish(self, output: Any, status: str, error: BaseException | str | None) -> None:
        """Record how the run ended and release what :meth:`begin` acquired."""

    def close(self) -> None:
        """Release the store without recording anything (idempotent)."""


class _NoJournal:
    """The journal of a run without a checkpoint: nothing is restored, recorded or kept."""

    run_id: str | None = None

    def recorded_input(self) -> None:
        return None

    def begin(self, inputs: dict[str, Any], backends: dict[str, Backend]) -> dict[str, Backend]:
        return backends

    def lookup(self, node: Node, name: str, kwargs: dict[str, Any]) -> tuple[None, None]:
        return None, None

    def commit(self, key: Any, node: Node, outcome: Any, tokens: Any, duration: float, attempts: int) -> None:
        pass

    async def remember(self, kind: str, key: str, compute: Callable[[], Awaitable[Any]], returns: Any = Any) -> Any:
        return await compute()

    def finish(self, output: Any, status: str, error: Any) -> None:
        pass

    def close(self) -> None:
        pass


NO_JOURNAL: Journal = _NoJournal()

JournalOpener = Callable[..., Journal]
_opener: list[JournalOpener] = []


def set_journal_opener(opener: JournalOpener) -> None:
    """Register ``opener(graph, plan, checkpoint, run_id=, replay=, cache=) -> Journal`` for ``Run(checkpoint=...)``."""
    _opener[:] = [opener]


def open_journal(graph: Graph, plan: _CompiledGraph, checkpoint: Any, run_id: str | None, replay: bool,
                 cache: bool) -> Journal:
    """The journal for a run with these options (:data:`NO_JOURNAL` when none of them is given)."""
    if checkpoint is None and run_id is None and not replay:
        return NO_JOURNAL
    if checkpoint is None:
        raise ConfigError("run_id= and replay= need checkpoint= (a Checkpointer, an SQLite file or a postgresql:// URL)")
    if not _opener:
        raise RuntimeError("checkpoint= needs plait.durable; `import plait` registers it")
    return _opener[0](graph, plan, checkpoint, run_id=run_id, replay=replay, cache=cache)


def fingerprint(plan: Any) -> str:
    """What makes a recorded run applicable to a graph: node names, kinds, input/output types, the backend names
    nodes ask for, and edges (not code)."""
    cached = plan.__dict__.get("_fingerprint")
    if cached is None:
        cached = plan.__dict__["_fingerprint"] = _fingerprint(plan)
    return cached


def _fingerprint(plan: Any) -> str:
    from plait.orchestrator._graph import GraphNode

    parts = []
    for name, node in sorted(plan.nodes.items()):
        params = ",".join(f"{p}:{_type_name(param.annotation)}" for p, param in sorted(node.params.items()))
        inner = fingerprint(node.graph._compile()) if isinstance(node, GraphNode) else ""
        models = sorted(node.models_used())  # the backend names it asks for (none: the fingerprint of old runs)
        parts.append(f"{name}|{type(node).__name__}|{params}|{_type_name(node.output_type)}|{inner}"
                     + (f"|models={','.join(models)}" if models else ""))
    for e in sorted(plan.edges, key=lambda e: (e.src, e.dst, e.param, e.kind)):
        parts.append(f"{e.src}->{e.dst}:{e.param}:{e.kind}:{e.back}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return repr(annotation)

"""Named backends: a run's ``backends={"small": ..., "large": ...}`` and the nodes' ``model="small"``.

A run has a default backend (``backend=``, named ``"default"`` in records)
and any number of named ones. A node picks one by name (``model=`` on the
node, or ``ctx.generate(..., model=...)`` per request); ``None`` means the
node's own model, else the default. A node inside a subgraph without a model
of its own uses the model of the subgraph's node. The names nodes ask for are
checked when the run starts, before any node runs, so a typo fails at once
and names the node. Token counts, budgets, records, events and recorded
samples carry the name.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from plait.errors import ConfigError, GraphError

if TYPE_CHECKING:
    from plait.executors._base import Backend
    from plait.orchestrator._graph import _CompiledGraph

__all__ = ["DEFAULT", "check_model_name", "run_backends", "check_models", "model_users", "unknown_model"]

DEFAULT = "default"  # the name of the run's ``backend=`` in records, events and ``model=``


def check_model_name(model: Any, node: str) -> str | None:
    """``model`` if it is None or a backend name (an identifier); else a one-line GraphError naming ``node``."""
    if model is None or (isinstance(model, str) and model.isidentifier()):
        return model
    raise GraphError(f"node {node!r}: model= takes the name of one of the run's backends, such as 'small' "
                     f"(an identifier), got {model!r}")


def run_backends(backend: Backend | None, backends: Mapping[str, Backend] | None) -> dict[str, Backend]:
    """The run's backends by name (``"default"`` for ``backend=``); a one-line ConfigError names a bad entry."""
    from plait.executors._base import Backend

    named: dict[str, Backend] = {} if backend is None else {DEFAULT: backend}
    if backends is None:
        return named
    if not isinstance(backends, Mapping):
        raise ConfigError(f"backends= takes a dict from name to Backend, such as {{'small': b1, 'large': b2}}, "
                          f"got {type(backends).__name__}")
    if not backends:
        raise ConfigError("backends= is empty; give at least one name: backend pair, or leave it out")
    seen: dict[int, str] = {}
    for name, value in backends.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"backend name {name!r} is not an identifier; use names such as 'small' or 'large'")
        if name == DEFAULT:
            raise ConfigError("backends={'default': ...}: 'default' names the run's backend=; pass that one as "
                              "backend=... (or choose another name)")
        if not isinstance(value, Backend):
            raise ConfigError(f"backends[{name!r}] is {type(value).__name__}, not a Backend; pass a backend such "
                              "as backend_for('MODEL'), OpenAIBackend(URL) or ScriptedBackend([...])")
        if id(value) in seen:
            raise ConfigError(f"backends[{name!r}] is the same backend as backends[{seen[id(value)]!r}]; give each "
                              "backend one name and point both nodes at it")
        seen[id(value)] = name
        named[name] = value
    return named


def model_users(plan: _CompiledGraph, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(full node name, model name) for every backend name a node of ``plan`` (or of its subgraphs) asks for."""
    from plait.orchestrator._graph import GraphNode

    for name, node in plan.nodes.items():
        for model in sorted(node.models_used()):
            yield prefix + name, model
        if isinstance(node, GraphNode):
            yield from model_users(node.graph._compile(), f"{prefix}{name}/")


def check_models(plan: _CompiledGraph, known: Collection[str]) -> None:
    """Refuse, before anything runs, a node that asks for a backend the run lacks."""
    for node, model in model_users(plan):
        if model != DEFAULT and model not in known:
            raise ConfigError(unknown_model(node, model, known))


def unknown_model(node: str, model: str, known: Collection[str]) -> str:
    names = ", ".join(sorted(n for n in known if n != DEFAULT)) or "none"
    return (f"node {node!r} asks for model {model!r}, which this run lacks (its named backends: {names}); "
            f"pass backends={{{model!r}: ...}} to the run, or fix the name")

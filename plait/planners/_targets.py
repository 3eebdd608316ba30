"""What a router or a cascade sends work to: a model name, a node or a subgraph.

A *model target* is a name from the run's ``backends`` (``graph.run(...,
backends={"small": ..., "large": ...})``): the owner's ``step`` runs with
that model (its requests go there unless a request names its own model). A
*node target* (a ChainStep, FanOut, any Node) or a *subgraph* (a Graph) runs
as it is, with whatever models its own nodes name. Each activation runs
under its own context, ``owner[label]``, that sums the tokens it spent, so
the owner can say what each target cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from plait.errors import ConfigError
from plait.orchestrator._context import RunContext
from plait.orchestrator._graph import Graph, GraphNode
from plait.orchestrator._models import model_users
from plait.orchestrator._node import Node, Param
from plait.orchestrator._runtime import run_subgraph
from plait.planners._budget_split import Spending

__all__ = ["Target", "OnModel", "targets_from", "shared_signature", "target_context", "run_target"]


class OnModel(Spending):
    """A run context for one target: its requests go to ``model`` (None: the parent's model), its tokens summed."""

    __slots__ = ()

    def __init__(self, parent: RunContext, node: str, model: str | None = None):
        super().__init__(parent, node)
        self.model = model or parent.model


@dataclasses.dataclass(frozen=True)
class Target:
    """One resolved target: ``label`` (its name in the owner), ``model`` (model targets), ``runs`` (what is run)."""

    label: str
    runs: Node | Graph
    model: str | None = None

    @property
    def params(self) -> dict[str, Param]:
        return dict(self.runs.input_params if isinstance(self.runs, Graph) else self.runs.params)

    @property
    def output_type(self) -> Any:
        return self.runs.output_type

    def models_used(self) -> set[str]:
        """The backend names this target asks for: its model, or those its node or subgraph names."""
        if isinstance(self.runs, Graph):
            inner = {model for _, model in model_users(self.runs._compile())}
        else:
            inner = self.runs.models_used() - ({self.runs.model} if self.model else set())  # the target's wins
        return inner | ({self.model} if self.model else set())


def targets_from(owner: str, items: Mapping[str, Any], step: Node | Graph | None) -> dict[str, Target]:
    """Resolve ``{label: model name | Node | Graph}``; model names need ``step`` (what runs on them)."""
    if not items:
        raise ConfigError(f"{owner} needs at least one target (a model name, a node or a graph)")
    if isinstance(step, GraphNode):
        step = step.graph
    if step is not None and not isinstance(step, (Node, Graph)):
        raise ConfigError(f"{owner}: step must be a Node (a ChainStep, FanOut...) or a Graph, "
                          f"got {type(step).__name__}")
    resolved = {}
    for label, item in items.items():
        if not isinstance(label, str) or not label:
            raise ConfigError(f"{owner}: target names must be non-empty strings, got {label!r}")
        if isinstance(item, GraphNode):
            item = item.graph
        if isinstance(item, str):
            if step is None:
                raise ConfigError(f"{owner}: target {label!r} is the model {item!r}, so pass step=... (the node "
                                  "that runs on the chosen model, e.g. a ChainStep)")
            resolved[label] = Target(label, step, model=item)
        elif isinstance(item, (Node, Graph)):
            resolved[label] = Target(label, item)
        else:
            raise ConfigError(f"{owner}: target {label!r} must be a model name, a Node or a Graph, "
                              f"got {type(item).__name__}")
    return resolved


def shared_signature(owner: str, targets: Mapping[str, Target]) -> tuple[dict[str, Param], Any]:
    """The inputs every target takes (they must agree) and their output type (``Any`` when they differ)."""
    first = next(iter(targets.values()))
    params = first.params
    for target in targets.values():
        if set(target.params) != set(params):
            raise ConfigError(f"{owner}: every target must take the same inputs; {first.label!r} takes "
                              f"{sorted(params)} but {target.label!r} takes {sorted(target.params)}")
    outputs = {repr(t.output_type) for t in targets.values()}
    return params, first.output_type if len(outputs) == 1 else Any


def target_context(ctx: RunContext, target: Target, slot: str) -> OnModel:
    """The context ``target`` runs under: activation ``ctx.node[slot]`` on the target's model; its ``usage``
    sums what the target spends (also when it fails)."""
    return OnModel(ctx, f"{ctx.node}[{slot}]", target.model or getattr(target.runs, "model", None))


async def run_target(child: OnModel, target: Target, inputs: Mapping[str, Any]) -> Any:
    """Run ``target`` on ``inputs`` under ``child`` (see :func:`target_context`) and return its output."""
    if isinstance(target.runs, Graph):  # its nodes' tokens count in child's sum (Spending._enclose)
        return await run_subgraph(target.runs, dict(inputs), child)
    return await target.runs.invoke(child, dict(inputs))

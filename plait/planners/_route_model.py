"""RouteModel: send each input to one model (or node, or subgraph) chosen by a classifier.

The classifier is one of:

* a function of the inputs (sync or async) returning a route name;
* :class:`ChooseRoute`: a (small) model's choice, constrained to the route
  names (a choice constraint when the backend supports structured output,
  and a :class:`ChoiceParser` either way, with bounded re-asks);
* a :class:`~plait.planners.RouteTable` learned from a batch's results.

A model's choice is hostile input: a reply that names no route (or several)
is re-asked ``max_reasks`` times, then goes to ``default`` when one is
declared, else fails the node with :class:`~plait.ParseError`. A function or
table returning an unknown name is a bug: it goes to ``default`` too when
declared, else raises :class:`~plait.ConfigError` naming the name and the
routes. Each decision emits :class:`~plait.orchestrator.ModelRouted`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from plait.errors import ConfigError, ParseError
from plait.executors._base import SamplingParams
from plait.orchestrator._context import RunContext
from plait.orchestrator._events import ModelRouted
from plait.orchestrator._graph import Graph
from plait.orchestrator._node import Node, Signature
from plait.planners._chain import ChainStep
from plait.planners._parsers import ChoiceParser
from plait.planners._route_table import RouteTable, _call_with
from plait.planners._targets import OnModel, run_target, shared_signature, target_context, targets_from
from plait.planners._template import Template, TemplateSource

__all__ = ["RouteModel", "ChooseRoute"]


class ChooseRoute:
    """A model picks the route: ``template`` (its placeholders are the router's inputs) asks it to reply
    with one route name; ``model`` names the backend that answers (None: the router's own model)."""

    def __init__(self, template: TemplateSource | Template, *, model: str | None = None,
                 sampling: SamplingParams | None = None, max_reasks: int = 1):
        self.template = template
        self.model = model
        self.sampling = sampling or SamplingParams(max_tokens=16)
        self.max_reasks = max_reasks

    def step(self, routes: Sequence[str], name: str) -> ChainStep:
        """The chain step that asks the model, its reply parsed as one of ``routes``."""
        return ChainStep(self.template, ChoiceParser(list(routes)), sampling=self.sampling,
                         max_reasks=self.max_reasks, name=f"{name}_choice")


class RouteModel(Node):
    """Routes each input to one of ``routes`` chosen by ``classifier``; the output is that route's output.

    Example::

        solve = ChainStep("Q: {question}\\nA:", NumberParser(int))
        router = RouteModel(lambda question: "large" if len(question) > 200 else "small",
                            routes=["small", "large"], step=solve)

    * ``routes``: a list of model names (``step`` runs on the chosen one), or a dict
      ``{route name: model name | Node | Graph}``; every target takes the same inputs;
    * ``classifier``: a function of the inputs, a :class:`ChooseRoute`, or a :class:`RouteTable`;
    * ``default``: the route taken when the classifier names no route (None: that is an error).
    """

    def __init__(self, classifier: Callable[..., Any] | ChooseRoute | RouteTable,
                 routes: Sequence[str] | Mapping[str, str | Node | Graph], *, step: Node | Graph | None = None,
                 default: str | None = None, name: str | None = None, **policy: Any):
        owner = f"RouteModel {name!r}" if name else "RouteModel"
        if isinstance(routes, str) or not isinstance(routes, (Sequence, Mapping)):
            raise ConfigError(f"{owner}: routes must be a list of model names or a dict {{name: model | node | "
                              f"graph}}, got {routes!r}")
        items = dict(routes) if isinstance(routes, Mapping) else {r: r for r in routes}
        self.routes = targets_from(owner, items, step)
        if default is not None and default not in self.routes:
            raise ConfigError(f"{owner}: default route {default!r} is not one of the routes {sorted(self.routes)}")
        self.default = default
        self._params, self._output = shared_signature(owner, self.routes)
        self.classifier = classifier
        self._chooser: ChainStep | None = None
        if isinstance(classifier, ChooseRoute):
            self._chooser = classifier.step(list(self.routes), name or "route")
            extra = sorted(set(self._chooser.params) - set(self._params))
            if extra:
                raise ConfigError(f"{owner}: the ChooseRoute template uses {extra}, which are not inputs of the "
                                  f"routes (inputs: {sorted(self._params)})")
        elif isinstance(classifier, RouteTable):
            unknown = sorted(classifier.routes - set(self.routes))
            if unknown:
                raise ConfigError(f"{owner}: the RouteTable routes to {unknown}, which are not routes here "
                                  f"({sorted(self.routes)}); learn it over these routes")
        elif not callable(classifier):
            raise ConfigError(f"{owner}: classifier must be a function of the inputs, a ChooseRoute or a "
                              f"RouteTable, got {classifier!r}")
        self.runs_nodes = any(isinstance(t.runs, Graph) or t.runs.runs_nodes for t in self.routes.values())
        super().__init__(name or "route", **policy)

    def models_used(self) -> set[str]:
        """The backend names this router may send work to: its routes', its chooser's and its own."""
        chooser = self.classifier.model if isinstance(self.classifier, ChooseRoute) else None
        own = super().models_used() | ({chooser} if chooser else set())
        return own.union(*(t.models_used() for t in self.routes.values()))

    def signature(self) -> Signature:
        return Signature(dict(self._params), self._output, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        route, by, reason = await self.choose(ctx, kwargs)
        ctx.emit(ModelRouted, route=route, by=by, reason=reason)
        target = self.routes[route]
        return await run_target(target_context(ctx, target, route), target, kwargs)

    async def choose(self, ctx: RunContext, inputs: dict[str, Any]) -> tuple[str, str, str | None]:
        """The route for ``inputs``, who chose it (``function``, ``model``, ``table``) and why, when worth saying."""
        if self._chooser is not None:
            return await self._ask_model(ctx, inputs)
        if isinstance(self.classifier, RouteTable):
            route, reason = self.classifier.choose(inputs)
            return self._known(route, "table", reason)
        route = _call_with(cast(Callable[..., Any], self.classifier), inputs)
        if inspect.isawaitable(route):
            route = await route
        return self._known(route, "function", None)

    async def _ask_model(self, ctx: RunContext, inputs: dict[str, Any]) -> tuple[str, str, str | None]:
        assert self._chooser is not None and isinstance(self.classifier, ChooseRoute)
        child = OnModel(ctx, f"{ctx.node}[choose]", self.classifier.model)
        values = {k: v for k, v in inputs.items() if k in self._chooser.params}
        try:
            return (await self._chooser.ask(child, values)).value, "model", None
        except ParseError as exc:
            if self.default is None:
                raise ParseError(f"router {self.name!r}: the model named no route of {sorted(self.routes)} "
                                 f"({exc}); declare default=... to route such inputs anyway", raw=exc.raw,
                                 attempts=exc.attempts) from exc
            return self.default, "model", f"the model named no route ({_clip(exc.raw)}): default {self.default!r}"

    def _known(self, route: Any, by: str, reason: str | None) -> tuple[str, str, str | None]:
        if isinstance(route, str) and route in self.routes:
            return route, by, reason
        if self.default is not None:
            return self.default, by, f"the classifier returned {_clip(route)}, not a route: default {self.default!r}"
        raise ConfigError(f"router {self.name!r}: the classifier returned {_clip(route)}, which is not a route "
                          f"({sorted(self.routes)}); return one of them or declare default=...")


def _clip(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"

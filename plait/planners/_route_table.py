"""RouteTable: a router learned from a batch's results (which route answered which kind of input correctly).

Routing each query to the model that suits it can beat one stronger model at
lower cost (Avengers-Pro: +7% over the strongest single model, or its accuracy
at 27% lower cost). The table is the simplest such router: group inputs by a
``kind`` function of your choosing, measure each route's accuracy per kind on a
batch already run, and send each kind to the cheapest route whose accuracy is
within ``tolerance`` of the best route's for that kind. Kinds the batch never
saw (or that no route answered correctly) go to ``fallback``, picked the same
way over all inputs.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from plait.errors import ConfigError

__all__ = ["RouteTable"]


@dataclasses.dataclass
class RouteTable:
    """``kind(**inputs)`` -> a route name via ``choices``; unknown kinds go to ``fallback``.

    Build one with :meth:`learn`; pass it to ``RouteModel`` as the classifier.
    ``accuracy[kind][route]`` keeps what the choice was based on.
    """

    kind: Callable[..., Hashable]
    choices: dict[Hashable, str]
    fallback: str
    accuracy: dict[Hashable, dict[str, float]] = dataclasses.field(default_factory=dict)

    @classmethod
    def learn(cls, results: Iterable[tuple[Mapping[str, Any], str, bool]], *, kind: Callable[..., Hashable],
              cost: Mapping[str, float], tolerance: float = 0.0) -> RouteTable:
        """Learn from ``(inputs, route, correct)`` triples: one per input and route tried.

        ``cost``: each route's relative cost (tokens or price per call); every
        route in ``results`` must have one. ``tolerance``: accuracy a cheaper
        route may give up against the best (0: only an equally accurate one).
        """
        if not callable(kind):
            raise ConfigError(f"RouteTable.learn: kind must be a function of the inputs, got {kind!r}")
        if not 0 <= tolerance <= 1:
            raise ConfigError(f"RouteTable.learn: tolerance must be in [0, 1], got {tolerance!r}")
        bad = {r: c for r, c in cost.items() if not isinstance(c, (int, float)) or c < 0}
        if bad:
            raise ConfigError(f"RouteTable.learn: costs must be numbers >= 0, got {bad}")
        counts: dict[Hashable, dict[str, list[int]]] = {}
        overall: dict[str, list[int]] = {}
        for number, row in enumerate(results):
            inputs, route, correct = _row(number, row)
            if route not in cost:
                raise ConfigError(f"RouteTable.learn: result {number} used route {route!r}, which has no cost; "
                                  f"give cost={{{route!r}: ...}} (costs given for {sorted(cost)})")
            key = _call_with(kind, inputs)
            try:
                hash(key)
            except TypeError:
                raise ConfigError(f"RouteTable.learn: kind returned {type(key).__name__} for result {number}; "
                                  "return a str (or another hashable value)") from None
            for tally in (counts.setdefault(key, {}).setdefault(route, [0, 0]), overall.setdefault(route, [0, 0])):
                tally[0] += bool(correct)
                tally[1] += 1
        if not overall:
            raise ConfigError("RouteTable.learn: no results to learn from; run a batch on every route first")
        accuracy = {key: {r: c / n for r, (c, n) in by_route.items()} for key, by_route in counts.items()}
        fallback = _cheapest_good({r: c / n for r, (c, n) in overall.items()}, cost, tolerance)
        choices = {key: _cheapest_good(acc, cost, tolerance) for key, acc in accuracy.items() if max(acc.values()) > 0}
        return cls(kind, choices, fallback, accuracy)

    @property
    def routes(self) -> set[str]:
        """Every route this table can answer."""
        return {*self.choices.values(), self.fallback}

    def __call__(self, **inputs: Any) -> str:
        return self.choose(inputs)[0]

    def choose(self, inputs: Mapping[str, Any]) -> tuple[str, str]:
        """The route for ``inputs`` and a one-line reason (which kind, or why the fallback)."""
        key = _call_with(self.kind, inputs)
        try:
            route = self.choices.get(key)
        except TypeError:  # an unhashable kind
            route = None
        if route is None:
            return self.fallback, f"kind {key!r} was not learned: fallback {self.fallback!r}"
        return route, f"kind {key!r} -> {route!r}"


def _row(number: int, row: Any) -> tuple[Mapping[str, Any], str, bool]:
    try:
        inputs, route, correct = row
    except (TypeError, ValueError):
        raise ConfigError(f"RouteTable.learn: result {number} must be (inputs, route, correct), got {row!r}") from None
    if not isinstance(inputs, Mapping):
        raise ConfigError(f"RouteTable.learn: result {number}'s inputs must be a dict of the router's inputs, "
                          f"got {type(inputs).__name__}")
    return inputs, route, correct


def _cheapest_good(accuracy: Mapping[str, float], cost: Mapping[str, float], tolerance: float) -> str:
    """The cheapest route whose accuracy is within ``tolerance`` of the best (ties: the name first in order)."""
    best = max(accuracy.values())
    good = [r for r, a in accuracy.items() if a >= best - tolerance - 1e-12]
    return min(good, key=lambda r: (cost[r], r))


def _call_with(fn: Callable[..., Any], inputs: Mapping[str, Any]) -> Any:
    """``fn(**inputs)``, given only the inputs it names when it takes no ``**kwargs``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return fn(**inputs)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn(**inputs)
    return fn(**{k: v for k, v in inputs.items() if k in params})

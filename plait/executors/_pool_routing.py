"""How an :class:`~plait.executors.EndpointPool` picks the replica for a request.

Each policy sees the replicas that are up (in the pool's order, never empty)
and their requests in flight:

- ``program``: every request with one routing key (``Request.route``: the run
  id, set by the runtime) goes to one replica, so the prompt prefixes a run
  builds up (a subtask tree's context, a fan-out's shared prompt) stay in that
  replica's KV cache. A new key goes to the replica with the fewest requests
  in flight, then the fewest keys. Keys are remembered in a bounded LRU table;
  a request without a key is routed as ``prefix`` would.
- ``prefix``: a hash of the prompt's leading characters (whole blocks of
  ``BLOCK_CHARS``, at most ``prefix_chars``) ranks the replicas (rendezvous
  hashing: the same prefix always ranks them the same way, and a replica
  going down moves only its own prefixes); the first one whose load is under
  the cap ``ceil(load_factor * (in flight + 1) / replicas)`` takes it.
- ``least-loaded``: the fewest requests in flight (ties in turn).
- ``round-robin``: in turn, whatever the request (the baseline of the benchmark).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar

from plait.executors._base import Request

__all__ = ["Routing", "ROUTINGS", "Router", "make_router", "RoutedReplica"]

Routing = Literal["program", "prefix", "least-loaded", "round-robin"]
ROUTINGS: tuple[str, ...] = ("program", "prefix", "least-loaded", "round-robin")
BLOCK_CHARS = 256  # about 64 tokens: prompts are compared in whole blocks, like a prefix cache's pages
MAX_PROGRAMS = 100_000  # routing keys remembered by `program` (least recently used ones are forgotten)


class RoutedReplica(Protocol):
    url: str
    in_flight: int


R = TypeVar("R", bound=RoutedReplica)


class Router(Protocol):
    def pick(self, request: Request, replicas: Sequence[R]) -> R: ...


def make_router(routing: str, *, prefix_chars: int, load_factor: float) -> Router:
    """The router for ``routing`` (one of :data:`ROUTINGS`; the pool checked it)."""
    if routing == "program":
        return _ProgramRouter(_PrefixRouter(prefix_chars, load_factor))
    if routing == "prefix":
        return _PrefixRouter(prefix_chars, load_factor)
    if routing == "least-loaded":
        return _LeastLoadedRouter()
    return _RoundRobinRouter()


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _RoundRobinRouter:
    def __init__(self) -> None:
        self._turn = itertools.count()

    def pick(self, request: Request, replicas: Sequence[R]) -> R:
        return replicas[next(self._turn) % len(replicas)]


class _LeastLoadedRouter:
    def __init__(self) -> None:
        self._turn = itertools.count()

    def pick(self, request: Request, replicas: Sequence[R]) -> R:
        least = min(r.in_flight for r in replicas)
        idle = [r for r in replicas if r.in_flight == least]
        return idle[next(self._turn) % len(idle)]


class _PrefixRouter:
    def __init__(self, prefix_chars: int, load_factor: float):
        self.prefix_chars, self.load_factor = prefix_chars, load_factor

    def key(self, request: Request) -> bytes:
        text = request.prompt_text()[: self.prefix_chars]
        whole = len(text) // BLOCK_CHARS * BLOCK_CHARS
        return _digest(text[:whole] if whole else text)

    def pick(self, request: Request, replicas: Sequence[R]) -> R:
        key = self.key(request)
        ranked = sorted(replicas, key=lambda r: _digest(key.hex() + r.url), reverse=True)
        cap = math.ceil(self.load_factor * (sum(r.in_flight for r in replicas) + 1) / len(replicas))
        return next((r for r in ranked if r.in_flight < cap), min(ranked, key=lambda r: r.in_flight))


class _ProgramRouter:
    def __init__(self, fallback: _PrefixRouter):
        self._fallback = fallback
        self._home: OrderedDict[str, str] = OrderedDict()  # routing key -> replica URL, least recent first
        self._keys: defaultdict[str, int] = defaultdict(int)  # replica URL -> keys homed there

    def pick(self, request: Request, replicas: Sequence[R]) -> R:
        key = request.route
        if not key:
            return self._fallback.pick(request, replicas)
        home = self._home.get(key)
        chosen = next((r for r in replicas if r.url == home), None)
        if chosen is not None:
            self._home.move_to_end(key)
            return chosen
        chosen = min(replicas, key=lambda r: (r.in_flight, self._keys[r.url]))
        if home is not None:  # its replica is down: the program moves, and stays where it went
            self._keys[home] -= 1
        self._home[key] = chosen.url
        self._home.move_to_end(key)
        self._keys[chosen.url] += 1
        if len(self._home) > MAX_PROGRAMS:
            _, url = self._home.popitem(last=False)
            self._keys[url] -= 1
        return chosen

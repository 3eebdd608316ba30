"""A backend wrapper that fails on purpose: for fault-injection tests and the durability benchmark."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import anyio
from pydantic_core import to_json

from plait.errors import BackendError, ConfigError
from plait.executors._base import Backend, Completion, Request

__all__ = ["FlakyBackend"]


class FlakyBackend(Backend):
    """Wraps ``inner`` and makes a fraction of calls fail: ``error_rate`` raise
    :class:`~plait.BackendError`, ``hang_rate`` hang for ``hang_seconds``
    (forever by default, so something must cut them: a node ``timeout``).

    The draw is a hash of ``seed``, the request and how often that request was
    tried, so a given seed fails the same calls whatever the concurrency, and
    a retried request gets a fresh draw. ``errors``, ``hangs`` and ``calls``
    count what happened.
    """

    def __init__(self, inner: Backend, *, error_rate: float = 0.1, hang_rate: float = 0.0, seed: int = 0,
                 hang_seconds: float = math.inf):
        if not 0 <= error_rate <= 1 or not 0 <= hang_rate <= 1 or error_rate + hang_rate > 1:
            raise ConfigError(f"error_rate and hang_rate must be in [0, 1] and sum to at most 1, "
                              f"got {error_rate} and {hang_rate}")
        self.inner = inner
        self.error_rate, self.hang_rate, self.seed, self.hang_seconds = error_rate, hang_rate, seed, hang_seconds
        self.name = f"flaky({inner.name})"
        self.model = inner.model
        self.supports_structured_output = inner.supports_structured_output
        self.supports_logprobs = inner.supports_logprobs
        self.supports_streaming = inner.supports_streaming
        self._tries: dict[bytes, int] = defaultdict(int)
        self.calls = self.errors = self.hangs = 0

    @property
    def identity(self) -> str:
        return self.inner.identity

    def _draw(self, request: Request) -> float:
        body = to_json(request.model_dump(exclude={"tag", "route"}))
        attempt = self._tries[body]
        self._tries[body] = attempt + 1
        h = hashlib.blake2b(f"{self.seed}:{attempt}:".encode() + body, digest_size=8).digest()
        return int.from_bytes(h, "big") / 2**64

    async def _fault(self, requests: list[Request]) -> None:
        self.calls += 1
        draws = [self._draw(r) for r in requests]
        if any(d < self.error_rate for d in draws):
            self.errors += 1
            raise BackendError(f"injected failure (FlakyBackend seed {self.seed})")
        if any(d < self.error_rate + self.hang_rate for d in draws):
            self.hangs += 1
            await anyio.sleep(self.hang_seconds)
            raise BackendError(f"injected hang of {self.hang_seconds:g}s ended (FlakyBackend seed {self.seed})")

    async def generate(self, requests: list[Request]) -> list[Completion]:
        await self._fault(requests)
        return await self.inner.generate(requests)

    async def stream(self, request: Request, on_text: Callable[[str], Any]) -> Completion:
        await self._fault([request])
        return await self.inner.stream(request, on_text)

    def count_prompt_tokens(self, request: Request) -> int:
        return self.inner.count_prompt_tokens(request)

    async def start(self) -> None:
        await self.inner.start()

    async def aclose(self) -> None:
        await self.inner.aclose()

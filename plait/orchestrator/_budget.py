"""The run's token budget: every request reserves its worst case before it is sent.

Counting tokens only once requests return lets concurrent branches overrun a
budget by any amount (a 200-wide map under ``token_budget=10`` sent 200
requests and spent 4,200 tokens). Here a request first reserves

    prompt tokens + max_tokens * n

where the backend counts the prompt (:meth:`~plait.Backend.count_prompt_tokens`:
exact for the in-process vLLM engine and the scripted doubles, a documented
upper bound otherwise). ``max_tokens`` always has a value (256 unless the
request says otherwise), and that is what is reserved. A reservation that
cannot fit even once the requests in flight have settled is refused with
:class:`~plait.BudgetExceededError`; one that would fit then waits for them
(they usually spend less than they reserved). When the request returns, its
reservation is replaced by what it actually spent, so spending can pass the
budget only by what requests in flight return beyond their reservations:
nothing when the backend honours ``max_tokens`` and counts prompts as it
reserved them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from plait.errors import BudgetExceededError
from plait.executors._base import prompt_token_bound

if TYPE_CHECKING:
    from plait.executors._base import Backend, Request
    from plait.orchestrator._record import TokenUsage

__all__ = ["TokenBudget"]


class TokenBudget:
    """Tokens spent (``spent``, the run's usage) and reserved by requests in flight, against ``limit``."""

    __slots__ = ("limit", "spent", "reserved", "_settled")

    def __init__(self, limit: int | None, spent: TokenUsage):
        self.limit = limit
        self.spent = spent
        self.reserved = 0
        self._settled: anyio.Event | None = None  # set (and dropped) whenever a reservation is released

    @staticmethod
    def worst_case(requests: list[Request], backend: Backend | None) -> int:
        """Most tokens ``requests`` can cost: prompts (counted by ``backend``, else bounded) plus ``max_tokens * n``."""
        count = prompt_token_bound if backend is None else backend.count_prompt_tokens
        return sum(count(r) + r.params.max_tokens * r.params.n for r in requests)

    async def reserve(self, need: int, node: str) -> None:
        """Hold ``need`` tokens; wait while requests in flight hold too many; refuse what can never fit."""
        limit = self.limit
        if limit is None:
            return
        while True:
            spent = self.spent.total
            if spent + need > limit:
                raise BudgetExceededError(spent, limit, node, needed=need)
            if spent + self.reserved + need <= limit:
                self.reserved += need
                return
            if self._settled is None:
                self._settled = anyio.Event()
            await self._settled.wait()

    def release(self, need: int) -> None:
        """Give back a reservation (the caller then reports what was actually spent, with no await between)."""
        if self.limit is None:
            return
        self.reserved -= need
        if self._settled is not None:
            self._settled.set()
            self._settled = None

"""A node's token account: a run context that sums what is spent through it and keeps it within a limit.

Each request reserves its worst case (``prompt + max_tokens * n``, as the
run's budget does, see ``plait/orchestrator/_budget.py``) against the node's
limit, and against every enclosing node's, before it is sent, so a node never
sends a request that could take it over. Nodes whose calls each have their
own ``max_tokens`` (Refine, SubtaskTree, PlanAndExecute, ReAct, Formulate,
Cascade) go through :func:`fit`: a call is cut to what the budget has left,
or refused with a BudgetExceededError that :meth:`Spending.owns` (the node
then ends with what it has, while the run's own budget still stops the run);
:class:`BudgetCut` does it before every re-ask, and :func:`first_call_fits`
refuses a budget too small for the first prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plait.errors import BudgetExceededError, ConfigError
from plait.executors._base import Completion, Request
from plait.orchestrator._budget import TokenBudget
from plait.orchestrator._context import RunContext
from plait.orchestrator._record import TokenUsage

__all__ = ["Spending", "BudgetCut", "fit", "spent", "owned", "within_budget", "first_call_fits"]


class Spending(RunContext):
    """A run context that sums the tokens spent through it and, given ``limit``, keeps them within it.

    Made from another Spending, its tokens count in that one's sum too (a vote's samples in the vote's, a vote
    inside a cascade tier in the tier's), and that one's limit holds for its requests too. The nodes of a
    subgraph run under a Spending spend from it as well (:meth:`_enclose`): a budget holds inside a Refine's
    loop or a plan's DAG. A request refused by a Spending's own limit raises a BudgetExceededError that
    :meth:`owns` recognises, so a node can end gracefully on its budget but still stop on the run's.
    """

    __slots__ = ("usage", "limit", "_budget", "_outer")

    def __init__(self, parent: RunContext, node: str | None = None, limit: int | None = None):
        super().__init__(parent._state, node or parent.node, parent.iteration, model=parent.model)
        if self.node == parent.node:  # the same activation: its count (what a checkpoint commits) stays whole
            if parent.tokens is None:
                parent.tokens = TokenUsage()
            self.tokens = parent.tokens
        self.usage = TokenUsage()
        self.limit = limit
        self._budget = TokenBudget(limit, self.usage)
        self._outer = parent if isinstance(parent, Spending) else None

    def _chain(self) -> list[Spending]:
        chain: list[Spending] = []
        spending: Spending | None = self
        while spending is not None:
            chain.append(spending)
            spending = spending._outer
        return chain

    @property
    def left(self) -> int | None:
        """Tokens no limit of this chain has spent or reserved, at most the run's budget's (None: no limit)."""
        lefts = [_room(b) for b in self._limits()]
        if self.tokens_left is not None:
            lefts.append(self.tokens_left)
        return max(min(lefts), 0) if lefts else None

    def _limits(self) -> list[TokenBudget]:
        return [s._budget for s in self._chain() if s._budget.limit is not None]

    def owns(self, error: BaseException) -> bool:  # see also owned(ctx, error) for any context
        """Whether ``error`` is a refusal by a limit of this chain (not by the run's budget)."""
        return getattr(error, "_refused_by", None) in self._limits()

    def _enclose(self, inner: RunContext) -> RunContext:
        """``inner`` (a subgraph node's context) as a Spending that shares this one's sum and limits."""
        view = object.__new__(Spending)
        for slot in RunContext.__slots__:
            setattr(view, slot, getattr(inner, slot))
        view.usage, view.limit, view._budget, view._outer = self.usage, self.limit, self._budget, self._outer
        return view

    def report_tokens(self, prompt: int = 0, completion: int = 0, cached: int = 0, model: str = "", *,
                      model_name: str | None = None) -> None:
        super().report_tokens(prompt, completion, cached, model, model_name=model_name)
        for spending in self._chain():
            spending.usage.add(prompt, completion, cached)

    async def _reserve_all(self, requests: list[Request], model: str | None) -> list[tuple[TokenBudget, int]]:
        """Reserve ``requests``' worst case against every limit of the chain (none held when one refuses)."""
        held: list[tuple[TokenBudget, int]] = []
        limits = self._limits()
        if not limits:
            return held
        need = TokenBudget.worst_case(requests, self._backend(model)[0])
        try:
            for budget in limits:
                try:
                    await budget.reserve(need, self.node)
                except BudgetExceededError as exc:
                    exc._refused_by = budget  # type: ignore[attr-defined]  # see owns()
                    raise
                held.append((budget, need))
        except BaseException:
            _release(held)
            raise
        return held

    async def generate(self, request: Any, *, model: str | None = None) -> Any:
        held = await self._reserve_all([request] if isinstance(request, Request) else list(request), model)
        try:
            return await super().generate(request, model=model)
        finally:
            _release(held)

    async def generate_stream(self, request: Request, on_text: Callable[[str], Any], *,
                              model: str | None = None) -> Completion:
        held = await self._reserve_all([request], model)
        try:
            return await super().generate_stream(request, on_text, model=model)
        finally:
            _release(held)


def _room(budget: TokenBudget) -> int:
    """Tokens of a limited budget neither spent nor reserved."""
    return (budget.limit or 0) - budget.spent.total - budget.reserved


def _release(held: list[tuple[TokenBudget, int]]) -> None:
    for budget, need in held:
        budget.release(need)


def spent(ctx: Spending, owner: str, needed: int | None = None) -> BudgetExceededError:
    """The BudgetExceededError (that ``ctx.owns``) of a node whose budget cannot pay for its next call."""
    tight = min(ctx._limits(), key=_room)
    error = BudgetExceededError(tight.spent.total, tight.limit or 0, owner, needed=needed)
    error._refused_by = tight  # type: ignore[attr-defined]  # see Spending.owns
    return error


def fit(ctx: RunContext, request: Request, owner: str, *, whole: bool = False) -> Request:
    """``request`` with ``max_tokens`` cut to what ``ctx``'s node budget leaves after its prompt.

    For nodes whose calls each have a ``max_tokens`` (a ReAct turn, a critique,
    a plan): the last call gets what is left (its ``n`` samples an equal
    share); when not even ``min_tokens`` (at least 1) is left for a reply, the
    request is not sent and a BudgetExceededError that ``ctx.owns`` is raised,
    for the node to end on. ``whole``: send it only with its full
    ``max_tokens`` (a call that is useless cut short, such as a revision).
    Without a node budget, ``request`` comes back unchanged.
    """
    if not isinstance(ctx, Spending) or not ctx._limits():
        return request
    params = request.params
    prompt = ctx.backend.count_prompt_tokens(request)
    reply = (min(_room(b) for b in ctx._limits()) - prompt) // params.n  # each of n samples
    floor = params.max_tokens if whole else max(params.min_tokens, 1)
    if reply < floor:
        raise spent(ctx, owner, prompt + params.n * floor)
    if reply >= params.max_tokens:
        return request
    return request.model_copy(update={"params": params.model_copy(update={"max_tokens": reply})})


def first_call_fits(owner: str, budget: int | None, ctx: RunContext, request: Request) -> None:
    """A ConfigError naming ``owner`` when ``budget`` cannot hold ``request`` (its first call)'s prompt and a reply."""
    if budget is None:
        return
    prompt, n = ctx.backend.count_prompt_tokens(request), request.params.n
    if budget - prompt < n:
        replies = "a reply" if n == 1 else f"{n} replies"
        raise ConfigError(f"{owner}: budget={budget} cannot hold its first prompt ({prompt} tokens) and {replies}; "
                          f"raise budget to at least {prompt + n}, or shorten the prompt")


class BudgetCut:
    """A ``before`` hook for ``ask_until_usable``: each call cut by :func:`fit`; remembers whether it cut the last.

    A reply cut short by the budget that turns out unusable is the budget's
    doing, not the model's: :meth:`raise_if_cut` then ends the node as on a
    spent budget (instead of a ParseError or PlanError).
    """

    def __init__(self, ctx: Spending, owner: str):
        self.ctx, self.owner, self.cut = ctx, owner, False

    def __call__(self, request: Request) -> Request:
        fitted = fit(self.ctx, request, self.owner)
        self.cut = fitted.params.max_tokens < request.params.max_tokens
        return fitted

    def raise_if_cut(self) -> None:
        if self.cut:
            raise spent(self.ctx, self.owner)


def owned(ctx: RunContext, error: BaseException) -> bool:
    """Whether ``error`` is a refusal by a node budget ``ctx`` spends from (False for a plain context)."""
    return isinstance(ctx, Spending) and ctx.owns(error)


def within_budget(ctx: RunContext, owner: str | None = None) -> BudgetCut | None:
    """A :class:`BudgetCut` for ``ctx``'s node budget (None: ``ctx`` keeps none)."""
    if not isinstance(ctx, Spending) or not ctx._limits():
        return None
    return BudgetCut(ctx, owner or f"node {ctx.node!r}")

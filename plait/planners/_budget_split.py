"""Token budgets as the unit of a reasoning node: the rules that split a budget.

A node given ``budget=`` tokens (prompt and completion, every request it
makes) runs its calls through :class:`~plait.planners._spending.Spending`
with that limit (see ``_spending.py``: each request reserves its worst case
before it is sent, and :func:`fit` cuts a call to what is left). The split
rules here say how long a request may be: one chain gets what is left after
its prompt (:func:`reply_tokens`); k samples share what is left after their
prompts (:func:`tokens_per_sample`), or as many samples as fit are drawn when
the length of one is fixed (:func:`samples_that_fit`).
"""

from __future__ import annotations

from collections.abc import Callable

from plait.errors import ConfigError
from plait.executors._base import SamplingParams
from plait.planners._spending import (
    BudgetCut, Spending, first_call_fits, fit, owned, spent, within_budget)

__all__ = ["Spending", "BudgetCut", "fit", "spent", "owned", "within_budget", "check_budget", "first_call_fits",
           "explicit_max_tokens", "reply_tokens", "tokens_per_sample", "samples_that_fit", "split_vote"]


def check_budget(owner: str, budget: int | None) -> int | None:
    """``budget`` if it is a positive int (or None), else a ConfigError naming ``owner``."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"{owner}: budget must be a whole number of tokens >= 1, got {budget!r}")
    return budget


def explicit_max_tokens(params: SamplingParams | None) -> bool:
    """Whether ``params`` sets ``max_tokens`` itself (rather than taking the default of 256)."""
    return params is not None and "max_tokens" in params.model_fields_set


def reply_tokens(owner: str, left: int, prompt: int) -> int:
    """``max_tokens`` of one chain given ``left`` tokens: what remains after its ``prompt`` (at least 1)."""
    if left - prompt < 1:
        raise ConfigError(f"{owner}: the budget left ({left} tokens) cannot hold the prompt ({prompt} tokens) and a "
                          f"reply; raise budget to at least {prompt + 1} more tokens, or shorten the prompt")
    return left - prompt


def tokens_per_sample(owner: str, budget: int, prompts: int, k: int) -> int:
    """``max_tokens`` of each of ``k`` samples whose requests' prompts cost ``prompts`` tokens in all."""
    per = (budget - prompts) // k
    if per < 1:
        raise ConfigError(f"{owner}: budget={budget} cannot hold {k} samples: their prompts alone cost {prompts} "
                          f"tokens; raise budget to at least {prompts + k}, or lower k")
    return per


def samples_that_fit(owner: str, budget: int, prompts_for: Callable[[int], int], max_tokens: int) -> int:
    """The most samples of ``max_tokens`` each that fit ``budget`` with their prompts (``prompts_for(k)``).

    The cost of k samples grows with k (more samples never need fewer
    requests), so a binary search finds the largest k that fits.
    """
    def cost(k: int) -> int:
        return prompts_for(k) + k * max_tokens

    if cost(1) > budget:
        raise ConfigError(f"{owner}: budget={budget} cannot hold one sample of max_tokens={max_tokens} with its "
                          f"prompt ({cost(1)} tokens); raise budget or lower max_tokens")
    low, high = 1, max(budget // max_tokens, 1)
    while low < high:
        mid = (low + high + 1) // 2
        if cost(mid) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def split_vote(owner: str, budget: int, prompts: list[int], wave: int | None, *, k: int | None, max_tokens: int,
               quorum: int = 1) -> tuple[int, int]:
    """``(k, max_tokens)`` of a vote within ``budget``: k given, each sample's share; else as many as fit.

    ``prompts``: the prompt tokens of each variant's request (one entry without
    variants); sample i uses variant ``i % len(prompts)``, and every wave of
    ``wave`` samples (None: one wave) pays the prompt of each variant it draws.
    """
    count = len(prompts)

    def prompts_for(samples: int) -> int:
        size = wave or samples
        total = 0
        for start in range(0, samples, size):
            drawn = min(size, samples - start)
            hit = range(count) if drawn >= count else {i % count for i in range(start, start + drawn)}
            total += sum(prompts[v] for v in hit)
        return total

    if k is not None:
        return k, tokens_per_sample(owner, budget, prompts_for(k), k)
    k = samples_that_fit(owner, budget, prompts_for, max_tokens)
    if quorum > k:
        raise ConfigError(f"{owner}: budget={budget} holds {k} sample(s) of max_tokens={max_tokens}, fewer than "
                          f"the quorum of {quorum}; raise budget or lower max_tokens")
    return k, max_tokens

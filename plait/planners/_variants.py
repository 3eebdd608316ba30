"""Staggered samples: prompt variants, how k samples spread over them, and how a ChainStep's samples are drawn.

Identical samples of one prompt are redundant; samples started from
different points (exemplar orders or subsets, instructions, offsets into a
list of approaches) are less so. A variant is a set of template values (a
string fills ``{variant}``); sample ``i`` of a vote uses variant ``i % V``, so
k samples spread as evenly as k allows (k=8 over 3 variants: 3/3/2) and every
wave of an early-stopping vote mixes them. Each variant's samples of a wave
are one ``n``-request, and a wave's requests go to the backend as one batch;
the template's common part comes before the first variant placeholder, so
every variant's prompt shares it as a prefix that vLLM's prefix cache serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from plait.errors import ConfigError
from plait.executors._base import Request, SamplingParams
from plait.orchestrator._context import RunContext
from plait.orchestrator._graph import Graph
from plait.orchestrator._node import Node
from plait.planners._aggregators import Aggregator, Candidate
from plait.planners._asking import constrained
from plait.planners._chain import ChainStep

__all__ = ["Variant", "VariantTally", "as_variants", "check_variant_keys", "spread", "rotations", "draw",
           "variant_tallies", "CUT_OFF"]

CUT_OFF = "cut off at max_tokens"  # how a truncated sample's error starts


class Variant(BaseModel):
    """One prompt variant: the template values it sets, and a short label for records."""

    values: dict[str, Any]
    label: str


class VariantTally(BaseModel):
    """How one variant's samples voted: ``agreement`` is the share of its successful samples that chose the winner."""

    variant: int
    label: str
    samples: int = 0
    succeeded: int = 0
    distribution: dict[str, int] = {}
    agreement: float = 0.0


def as_variants(owner: str, variants: Sequence[str | Mapping[str, Any]]) -> list[Variant]:
    """Check ``variants`` (strings fill ``{variant}``; mappings set placeholders) and label them."""
    if isinstance(variants, (str, Mapping)) or not isinstance(variants, Sequence) or not variants:
        raise ConfigError(f"{owner}: variants must be a non-empty list of strings or dicts of template values, "
                          f"got {variants!r}"[:300])
    out: list[Variant] = []
    for i, item in enumerate(variants):
        if isinstance(item, str):
            values: dict[str, Any] = {"variant": item}
        elif isinstance(item, Mapping) and item and all(isinstance(k, str) and k.isidentifier() for k in item):
            values = dict(item)
        else:
            raise ConfigError(f"{owner}: variant {i} must be a string (it fills {{variant}}) or a non-empty dict of "
                              f"template values, got {item!r}"[:300])
        if out and set(values) != set(out[0].values):
            raise ConfigError(f"{owner}: variant {i} sets {sorted(values)} but variant 0 sets "
                              f"{sorted(out[0].values)}; every variant must set the same placeholders")
        label = " ".join(str(v) for v in values.values()).split()
        out.append(Variant(values=values, label=" ".join(label)[:60]))
    return out


def check_variant_keys(owner: str, step: Node | Graph, variants: list[Variant]) -> None:
    """The placeholders variants set must be the step's inputs (a ChainStep's: after its common ones)."""
    if isinstance(step, ChainStep):
        check_prefix(owner, step, variants)
        return
    params = step.input_params if isinstance(step, Graph) else step.params
    unknown = sorted(set(variants[0].values) - set(params))
    if unknown:
        raise ConfigError(f"{owner}: variants set {unknown}, which are not inputs of {step.name!r} "
                          f"(its inputs: {sorted(params)})")


def check_prefix(owner: str, step: ChainStep, variants: list[Variant]) -> None:
    """Variant placeholders must be placeholders of the step's template, after its common ones (a shared prefix)."""
    names = step.template.variables
    keys = set(variants[0].values)
    unknown = sorted(keys - set(names))
    if unknown:
        raise ConfigError(f"{owner}: variants set {unknown}, which the template of {step.name!r} does not have "
                          f"(its placeholders: {names})")
    first = min(names.index(k) for k in keys)
    late = [n for n in names[first:] if n not in keys]
    if late:
        raise ConfigError(f"{owner}: placeholder {{{late[0]}}} comes after the variant placeholder "
                          f"{{{names[first]}}} in the template of {step.name!r}; put the variant placeholders after "
                          "the common part so that every variant shares it as a prompt prefix (prefix caching)")


def spread(k: int, count: int) -> list[int]:
    """How many of ``k`` samples each of ``count`` variants draws (round robin: 8 over 3 is 3/3/2)."""
    return [k // count + (1 if v < k % count else 0) for v in range(count)]


def rotations(items: Sequence[str], count: int | None = None, sep: str = "\n\n") -> list[str]:
    """``count`` variants (default: one per item) each listing ``items`` from a different offset, joined by ``sep``.

    For staggered exemplar orders or approaches: variant j starts at item
    ``j * len(items) // count`` and wraps around.
    """
    if not items or any(not isinstance(i, str) for i in items):
        raise ConfigError(f"rotations needs a non-empty list of strings, got {items!r}"[:300])
    count = len(items) if count is None else count
    if count < 1:
        raise ConfigError(f"rotations needs count >= 1, got {count}")
    out = []
    for j in range(count):
        start = j * len(items) // count
        out.append(sep.join([*items[start:], *items[:start]]))
    return out


async def draw(ctx: RunContext, step: ChainStep, inputs: dict[str, Any], indices: range, params: SamplingParams,
               variants: list[Variant] | None = None, keep_truncated: bool = False) -> list[Candidate]:
    """Draw samples ``indices`` of ``step``: one ``n``-request per variant, all sent as one batch.

    Sample i uses variant ``i % V`` and is that variant's ``i // V``-th sample,
    drawn with seed ``seed + v * stride + i // V`` (stride: a large offset per
    variant; ``seed + i`` without variants) whatever the waves. A backend
    that returns more samples than asked is cut to ``n``; missing ones are failed samples.
    """
    count = len(variants) if variants else 1
    plan: list[tuple[Request, list[int]]] = []
    for v in range(count):
        mine = [i for i in indices if i % count == v]
        if not mine:
            continue
        update: dict[str, Any] = {"n": len(mine)}
        if params.seed is not None:
            update["seed"] = params.seed + v * _SEED_STRIDE + mine[0] // count
        values = {**inputs, **(variants[v].values if variants else {})}
        request = step.request(values).model_copy(
            update={"params": constrained(params.model_copy(update=update), step.parser, ctx.backend)})
        plan.append((request, mine))
    completions = await ctx.generate([request for request, _ in plan])
    candidates: list[Candidate] = []
    for (request, mine), completion in zip(plan, completions):
        samples = completion.samples[: len(mine)]
        for index, sample in zip(mine, samples):
            candidates.append(_candidate(step, index, sample, request.params.max_tokens, keep_truncated))
        for index in mine[len(samples):]:
            candidates.append(Candidate(index=index, error=f"the backend returned {len(samples)} of "
                                                           f"{len(mine)} samples asked"))
        if variants:
            for c in candidates[-len(mine):]:
                c.variant = mine[0] % count
    return candidates


_SEED_STRIDE = 1_000_003  # variant v's seeds start this far apart, so no two samples share a seed


def _candidate(step: ChainStep, index: int, sample: Any, max_tokens: int, keep_truncated: bool) -> Candidate:
    candidate = Candidate(index=index, text=sample.text, completion_tokens=sample.completion_tokens,
                          cumulative_logprob=sample.cumulative_logprob)
    if sample.finish_reason == "length" and not keep_truncated:
        candidate.error = (f"{CUT_OFF}={max_tokens} before it finished; raise max_tokens, "
                           "or pass keep_truncated=True to let such samples vote")
        return candidate
    try:
        candidate.value = step.parser.parse(sample.text)
    except Exception as exc:  # a sample that does not parse is a failed sample, not a failed vote
        candidate.error = f"{type(exc).__name__}: {exc}"
    return candidate


def variant_tallies(candidates: list[Candidate], variants: list[Variant], aggregate: Aggregator,
                    winner_key: str | None) -> list[VariantTally]:
    """Per variant: samples drawn, succeeded, its answers' counts and its agreement with the winner."""
    tallies = [VariantTally(variant=v, label=variant.label) for v, variant in enumerate(variants)]
    for c in candidates:
        if c.variant is None or not 0 <= c.variant < len(tallies):
            continue
        tally = tallies[c.variant]
        tally.samples += 1
        if c.ok:
            tally.succeeded += 1
            key = aggregate.key(c.value)
            text = key if isinstance(key, str) else repr(key)
            tally.distribution[text] = tally.distribution.get(text, 0) + 1
    for tally in tallies:
        if tally.succeeded and winner_key is not None:
            tally.agreement = tally.distribution.get(winner_key, 0) / tally.succeeded
    return tallies

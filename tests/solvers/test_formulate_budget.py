"""Formulate(budget=): a model that never writes a valid formulation stops within the budget, with k=1 and with a
vote; the budget cuts repairs short (fewer rounds than without it); a budget too small for the first prompt and its
k replies is refused up front."""

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait import FunctionBackend, Graph, NodeFailedError, SamplingParams
from plait.solvers import Formulate

PUZZLE = "Ann, Bob and Cid sit in seats 1-3, one each. Ann is not in seat 1. Bob sits directly left of Cid."


def always_invalid():
    """A model whose every reply is unreadable, different each time, and as long as max_tokens allows."""
    calls = []

    def reply(request):
        calls.append(request)
        return [f"nonsense {len(calls)}.{i} " + "garbage " * 5000 for i in range(request.params.n)]

    return FunctionBackend(reply)


def first_prompt() -> int:
    """Tokens of the first request's prompt (system, worked examples, the puzzle) for these backends."""
    from plait.executors import Request
    from plait.solvers._formulate_check import answer_hint
    from plait.solvers._prompts import formulate_messages
    node = Formulate(syntax="json")
    first = formulate_messages(PUZZLE, node.example_turns, answer_hint(node.answer), node.syntax.system)
    return always_invalid().count_prompt_tokens(Request(prompt=tuple(first)))


FIRST_PROMPT = first_prompt()


def formulate(backend, **options):
    g = Graph("g")
    g.add(Formulate(syntax="json", name="formulate", **options))
    return anyio.run(lambda: g.run({"problem": PUZZLE}, backend=backend))


@settings(max_examples=20, deadline=None)
@given(budget=st.integers(min_value=FIRST_PROMPT + 3, max_value=12_000), k=st.sampled_from([1, 3]))
def test_a_model_that_is_always_invalid_stops_within_the_budget(budget, k):
    backend = always_invalid()
    result = formulate(backend, max_rounds=20, k=k, budget=budget)
    out = result.output
    assert result.nodes["formulate"].tokens.total <= budget
    assert out.status == "invalid" and out.stopped == "budget" and len(out.rounds) < 20 * k


def test_a_budget_means_fewer_repair_rounds():
    sampling = SamplingParams(max_tokens=64)
    unbounded = formulate(always_invalid(), max_rounds=6, sampling=sampling).output
    assert len(unbounded.rounds) == 6 and unbounded.stopped == "done"
    backend = always_invalid()
    result = formulate(backend, max_rounds=6, sampling=sampling, budget=2 * FIRST_PROMPT + 200)
    out = result.output
    assert out.stopped == "budget" and 1 <= len(out.rounds) < 6
    assert result.nodes["formulate"].tokens.total <= 2 * FIRST_PROMPT + 200


def test_a_vote_budget_splits_the_first_wave_and_sends_no_wave_it_cannot_hold():
    from plait.planners import EarlyStop
    backend = always_invalid()
    budget = FIRST_PROMPT + 300
    result = formulate(backend, k=4, max_rounds=1, aggregate=EarlyStop(wave=2), budget=budget)
    first = backend.requests[0]
    assert first.params.n == 2 and first.params.max_tokens == 150  # the wave's two samples share what is left
    assert len(backend.requests) == 1 and result.output.stopped == "budget"  # no room for the second wave


def test_a_budget_too_small_for_the_first_prompt_and_k_replies_is_refused():
    backend = always_invalid()
    with pytest.raises(NodeFailedError) as info:
        formulate(backend, k=3, budget=FIRST_PROMPT + 2)
    assert str(info.value.cause) == (f"Formulate 'formulate': budget={FIRST_PROMPT + 2} cannot hold its first prompt "
                                     f"({FIRST_PROMPT} tokens) and 3 replies; raise budget to at least "
                                     f"{FIRST_PROMPT + 3}, or shorten the prompt")
    assert backend.requests == []

"""Cascade: accepted at the first tier, escalated, exhausted; every acceptance test; budgets across tiers."""

import anyio
import pytest

from plait import BudgetExceededError, ConfigError, Graph, NodeFailedError, SamplingParams, ScriptedBackend
from plait.errors import CascadeError
from plait.orchestrator import CascadeEscalated
from plait.planners import (
    Cascade, CascadeResult, ChainStep, FanOut, NumberParser, TextParser, agreement, consistent, parses, predicate,
)
from plait.solvers import CSP


def solve(**kw) -> ChainStep:
    return ChainStep("Q: {question}\nA:", NumberParser(int, constrain=False),
                     sampling=SamplingParams(max_tokens=8), name="solve", **kw)


def vote(k: int = 5) -> FanOut:
    return FanOut(solve(), k=k)


def run(node, backends, question="2+2", **options):
    g = Graph("g")
    g.add(node)
    return anyio.run(lambda: g.run({"question": question}, backends=backends, **options))


def escalations(result):
    return [e for e in result.events if isinstance(e, CascadeEscalated)]


def test_an_answer_the_small_model_agrees_on_is_accepted_and_the_large_model_is_never_asked():
    small, large = ScriptedBackend(["4", "4", "4", "5", "4"]), ScriptedBackend(["9"] * 5)
    result = run(Cascade(["small", "large"], step=vote(), accept=agreement(0.6)), {"small": small, "large": large})
    cascade: CascadeResult = result.output
    assert (cascade.value, cascade.answered_by, cascade.tier, cascade.accepted) == (4, "small", 0, True)
    assert large.requests == [] and len(small.requests) == 1
    assert [a.tier for a in cascade.attempts] == ["small"] and cascade.attempts[0].accepted
    assert cascade.attempts[0].tokens == result.tokens.total > 0
    assert escalations(result) == []


def test_a_split_vote_escalates_to_the_large_model_and_says_why():
    small, large = ScriptedBackend(["1", "2", "3", "4", "5"]), ScriptedBackend(["7", "7", "7", "7", "6"])
    result = run(Cascade(["small", "large"], step=vote(), accept=agreement(0.6)), {"small": small, "large": large})
    cascade = result.output
    assert (cascade.value, cascade.answered_by, cascade.tier, cascade.accepted) == (7, "large", 1, True)
    assert len(small.requests) == len(large.requests) == 1
    first, second = cascade.attempts
    assert (first.tier, first.model, first.accepted) == ("small", "small", False)
    assert "agreement 0.20 is below 0.6" in first.reason and second.reason is None
    (event,) = escalations(result)
    assert (event.node, event.from_tier, event.to_tier, event.tokens) == ("cascade", "small", "large", first.tokens)
    assert event.reason == first.reason
    # each tier's tokens are the tokens its model spent
    assert result.tokens_by_model["small"].total == first.tokens > 0
    assert result.tokens_by_model["large"].total == second.tokens > 0
    assert result.nodes["cascade"].tokens.total == first.tokens + second.tokens == cascade.tokens


def test_a_reply_that_never_parses_escalates():
    small, large = ScriptedBackend(["no idea"]), ScriptedBackend(["12"])
    cascade = run(Cascade(["small", "large"], step=solve(max_reasks=0), accept=predicate(lambda v: v >= 0)),
                  {"small": small, "large": large}).output
    assert (cascade.value, cascade.answered_by) == (12, "large")
    assert cascade.attempts[0].reason.startswith("ParseError: no parsable reply")
    assert cascade.attempts[0].tokens > 0  # a failed tier's tokens are counted too


def test_when_no_tier_is_accepted_the_last_answer_is_returned_unaccepted():
    small, large = ScriptedBackend(["1", "2", "3", "4", "5"]), ScriptedBackend(["6", "7", "8", "6", "9"])
    cascade = run(Cascade(["small", "large"], step=vote(), accept=agreement(0.6)),
                  {"small": small, "large": large}).output
    assert (cascade.value, cascade.answered_by, cascade.tier, cascade.accepted) == (6, "large", 1, False)
    assert all(not a.accepted and "below 0.6" in a.reason for a in cascade.attempts)


def test_the_last_answer_given_is_kept_when_the_last_tier_gives_none():
    small, large = ScriptedBackend(["-3"]), ScriptedBackend(["gibberish"])
    cascade = run(Cascade(["small", "large"], step=solve(max_reasks=0), accept=lambda v: v > 0),
                  {"small": small, "large": large}).output
    assert (cascade.value, cascade.answered_by, cascade.accepted) == (-3, "small", False)


def test_on_exhausted_raise_is_a_cascade_error_listing_every_tier():
    small, large = ScriptedBackend(["1", "2", "3", "4", "5"]), ScriptedBackend(["6", "7", "8", "6", "9"])
    node = Cascade(["small", "large"], step=vote(), accept=agreement(0.6), on_exhausted="raise")
    with pytest.raises(NodeFailedError) as info:
        run(node, {"small": small, "large": large})
    error = info.value.__cause__
    assert isinstance(error, CascadeError) and "no tier's answer was accepted" in str(error)
    assert "small: vote agreement 0.20" in str(error) and "large: vote agreement 0.40" in str(error)
    assert [a.tier for a in error.result.attempts] == ["small", "large"]


def test_no_answer_from_any_tier_is_a_cascade_error_whatever_on_exhausted():
    small, large = ScriptedBackend(["nothing"]), ScriptedBackend(["nothing either"])
    with pytest.raises(NodeFailedError) as info:
        run(Cascade(["small", "large"], step=solve(max_reasks=0), accept=lambda v: True),
            {"small": small, "large": large})
    assert isinstance(info.value.__cause__, CascadeError)
    assert "no tier gave an answer" in str(info.value.__cause__)


def test_the_run_budget_holds_across_tiers_and_a_spent_budget_is_not_escalated_past():
    small, large = ScriptedBackend(["1", "2", "3"]), ScriptedBackend(["5", "5", "5"])
    node = Cascade(["small", "large"], step=vote(k=3), accept=agreement(0.6))
    first = run(node, {"small": ScriptedBackend(["1", "2", "3"]), "large": ScriptedBackend(["5", "5", "5"])})
    tier_cost = first.output.attempts[0].tokens
    with pytest.raises(BudgetExceededError):  # room for the first tier's reservation, not for the second's
        run(node, {"small": small, "large": large}, token_budget=tier_cost + 30)
    assert len(small.requests) == 1 and large.requests == []


def test_tiers_can_be_nodes_with_their_own_models_and_subgraphs():
    cheap = ChainStep("cheap {question}", TextParser(), name="cheap", model="small")
    checked = Graph("checked")
    checked.add(ChainStep("careful {question}", TextParser(), name="careful", model="large"))
    small, large = ScriptedBackend(["maybe"]), ScriptedBackend(["Paris"])
    result = run(Cascade([cheap, checked], accept=predicate(lambda v: v != "maybe", "the answer hedges")),
                 {"small": small, "large": large}, question="capital of France")
    cascade = result.output
    assert (cascade.value, cascade.answered_by) == ("Paris", "checked")
    assert cascade.attempts[0].reason == "the answer hedges"
    assert cascade.attempts[1].tokens == result.tokens_by_model["large"].total > 0
    assert len(small.requests) == len(large.requests) == 1


def test_parses_accepts_text_a_parser_reads_and_returns_the_parsed_value():
    text = ChainStep("{question}", TextParser(), name="text")
    small, large = ScriptedBackend(["about five"]), ScriptedBackend(["5 apples"])
    cascade = run(Cascade(["small", "large"], step=text, accept=parses(NumberParser(int)), value_only=True),
                  {"small": small, "large": large}).output
    assert cascade == 5


def test_consistent_escalates_an_assignment_the_solver_finds_broken():
    csp = CSP(variables=[{"name": n, "domain": {"min": 1, "max": 3}} for n in ("A", "B")], constraints=["A < B"])
    g = Graph("g")

    @g.node
    def question() -> str:
        return "pick A and B"

    guess = Graph("guess")
    guess.add(lambda question: {"A": 3, "B": 1}, name="wrong")
    exact = Graph("exact")
    exact.add(lambda question: {"A": 1, "B": 2}, name="right")
    g.add(Cascade([guess, exact], accept=consistent(csp)))
    g.edge(question, "cascade")
    cascade = anyio.run(g.run).output
    assert cascade.value == {"A": 1, "B": 2} and cascade.answered_by == "exact"
    assert "A < B" in cascade.attempts[0].reason


def test_consistent_with_a_function_reports_its_problems():
    check = consistent(lambda v: [] if v % 2 == 0 else [f"{v} is odd"])
    assert check.check(4) is None and check.check(3) == "the answer is inconsistent: 3 is odd"
    csp = CSP(variables=[{"name": "A", "domain": [1, 2]}], constraints=[])
    assert consistent(csp).check({"A": 5}) == "the answer is inconsistent: A=5 is outside its domain"
    assert consistent(csp).check({}) == "the answer is inconsistent: A is not assigned"


def test_acceptance_tests_refuse_what_they_cannot_read():
    with pytest.raises(ConfigError, match="make the tier a FanOut"):
        agreement(0.5).check(7)
    with pytest.raises(ConfigError, match="return True"):
        predicate(lambda v: "yes").check(1)
    for bad in (0, 1.5):
        with pytest.raises(ConfigError, match="threshold"):
            agreement(bad)


@pytest.mark.parametrize("kwargs, message", [
    (dict(tiers=["small"]), "at least two tiers"),
    (dict(tiers="small"), "at least two tiers"),
    (dict(tiers=["small", "small"]), "tier names must differ"),
    (dict(tiers=["small", "large"], step=None), "pass step="),
    (dict(tiers=["small", 3]), "must be a model name, a Node or a Graph"),
    (dict(accept="yes"), "accept must be an acceptance test"),
    (dict(on_exhausted="retry"), "on_exhausted"),
    (dict(step=3), "step must be a Node"),
])
def test_bad_arguments_are_one_line_config_errors(kwargs, message):
    args = dict(tiers=["small", "large"], accept=agreement(0.6), step=vote()) | kwargs
    with pytest.raises(ConfigError, match=message):
        Cascade(args.pop("tiers"), args.pop("accept"), **args)


def test_tiers_taking_different_inputs_are_refused():
    other = ChainStep("{topic}", TextParser(), name="other")
    with pytest.raises(ConfigError, match="every target must take the same inputs"):
        Cascade([solve(), other], accept=lambda v: True)


def test_an_unknown_model_is_refused_before_anything_runs():
    small = ScriptedBackend(["4"] * 5)
    with pytest.raises(ConfigError, match="'cascade'.*'huge'"):
        run(Cascade(["small", "huge"], step=vote(), accept=agreement(0.6)), {"small": small})
    assert small.requests == []


def test_a_reason_quoting_hostile_output_is_bounded():
    huge = "x" * 5000
    step = ChainStep("{question}", TextParser(), name="echo")
    small = ScriptedBackend(["a " + huge, "b " + huge, "c " + huge])
    result = run(Cascade(["small", "large"], step=FanOut(step, k=3), accept=agreement(1.0)),
                 {"small": small, "large": ScriptedBackend(["ok"] * 3)})
    reason = result.output.attempts[0].reason
    assert reason.startswith("vote agreement 0.33") and len(reason) <= 303
    assert escalations(result)[0].reason == reason


def test_a_checkpointed_cascade_replays_with_no_backends(tmp_path):
    from plait import SQLiteCheckpointer

    def graph():
        g = Graph("g")
        g.add(Cascade(["small", "large"], step=vote(), accept=agreement(0.6)))
        return g

    store = SQLiteCheckpointer(tmp_path / "runs.db")
    small, large = ScriptedBackend(["1", "2", "3", "4", "5"]), ScriptedBackend(["7"] * 5)
    first = anyio.run(lambda: graph().run({"question": "q"}, backends={"small": small, "large": large},
                                          checkpoint=store, run_id="r"))
    replayed = anyio.run(lambda: graph().run(None, checkpoint=store, run_id="r", replay=True))
    assert replayed.output == first.output and replayed.output.answered_by == "large"
    assert {m: u.total for m, u in replayed.tokens_by_model.items()} == {"small": first.output.attempts[0].tokens,
                                                                         "large": first.output.attempts[1].tokens}
    assert len(small.requests) == len(large.requests) == 1  # the replay asked neither

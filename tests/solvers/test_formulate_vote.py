"""Formulate(k=...): the formalization vote over scripted formulations, and Formulate(answer=...)."""

import json

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import ConfigError, FunctionBackend, Graph, ScriptedBackend
from plait.executors import Completion, Sample, SamplingParams
from plait.orchestrator import FormulationChecked, VoteTallied
from plait.planners import EarlyStop
from plait.solvers import Formulate

PUZZLE = "Ann, Bob and Cid sit in seats 1-3, one each. Ann is not in seat 1. Bob sits directly left of Cid."
SEATS = "Ann Bob Cid in 1..3\nalldifferent(Ann,Bob,Cid)\n"  # formulations in the language, Formulate's default
GOOD = SEATS + "Ann != 1\nBob+1 == Cid"
GOOD_TOO = SEATS + "Ann == 3\nCid == 2"  # another model, the same answer
WRONG = SEATS + "Ann == 1\nBob == 2"  # one solution, the wrong one
INVALID = SEATS + "Bob+1 == Dan"
RIGHT = '{"Ann": 3, "Bob": 1, "Cid": 2}'


def formulate(script, problem=PUZZLE, **options):
    g = Graph("formulate")
    g.add(Formulate(**options))
    backend = ScriptedBackend(script)
    result = anyio.run(lambda: g.run({"problem": problem}, backend=backend))
    return result.output, backend, result


def typed(result, cls):
    return [e for e in result.events if isinstance(e, cls)]


def test_agreeing_formulations_come_from_one_n_k_request_and_win_with_full_confidence():
    formulation, backend, result = formulate([GOOD, GOOD_TOO, GOOD], k=3, answer=["Ann", "Bob", "Cid"])
    [request] = backend.requests  # one prefill for the three
    assert request.params.n == 3 and request.params.temperature == 0.7  # greedy samples would all agree
    assert formulation.status == "solved" and formulation.answer == {"Ann": 3, "Bob": 1, "Cid": 2}
    assert formulation.confidence == 1.0 and formulation.votes == {RIGHT: 3.0}
    assert [(r.sample, r.round, r.status) for r in formulation.rounds] == [(0, 1, "solved"), (1, 1, "solved"),
                                                                          (2, 1, "solved")]
    [vote] = typed(result, VoteTallied)
    assert (vote.k, vote.aggregator, vote.winner, vote.agreement, vote.failed) == (3, "EarlyStop", RIGHT, 1.0, 0)
    assert vote.answers == [RIGHT] * 3 and vote.tokens > 0
    assert [e.sample for e in typed(result, FormulationChecked)] == [0, 1, 2]


def test_a_split_vote_outvotes_a_wrong_translation_and_reports_the_agreement():
    formulation, _, result = formulate([WRONG, GOOD, GOOD_TOO], k=3, answer=["Ann", "Bob", "Cid"])
    wrong = '{"Ann": 1, "Bob": 2, "Cid": 3}'
    assert formulation.status == "solved" and formulation.answer == {"Ann": 3, "Bob": 1, "Cid": 2}
    assert formulation.confidence == pytest.approx(2 / 3) and formulation.votes == {wrong: 1.0, RIGHT: 2.0}
    assert formulation.csp.constraints[1].expression == "Ann != 1"  # the model of the first winning formulation
    [vote] = typed(result, VoteTallied)
    assert vote.answers == [wrong, RIGHT, RIGHT] and vote.winner == RIGHT


def test_a_tied_vote_goes_to_the_earliest_formulation():
    formulation, _, _ = formulate([WRONG, GOOD], k=2, answer=["Ann", "Bob", "Cid"])
    assert formulation.answer == {"Ann": 1, "Bob": 2, "Cid": 3} and formulation.confidence == 0.5


def test_all_invalid_formulations_leave_the_vote_unsolved_with_no_confidence():
    cut = Sample(text=GOOD[:15], finish_reason="length", completion_tokens=2048)  # no complete line
    lacking = "Bob Cid in 1..3\nBob != Cid"  # reads, but lacks the answer variable
    formulation, backend, result = formulate([lacking, "{bad", cut], k=3, max_rounds=1, answer=["Ann"])
    assert formulation.status == "invalid" and formulation.answer is None
    assert formulation.confidence == 0.0 and formulation.votes == {}
    assert len(backend.requests) == 1 and len(formulation.rounds) == 3
    assert formulation.csp is not None  # the formulation that got furthest (it was read) speaks for the result
    assert formulation.rounds[1].finding.startswith("Your model could not be read: line 1, column 1")
    [vote] = typed(result, VoteTallied)
    assert (vote.winner, vote.failed, vote.truncated) == (None, 3, 1)
    assert vote.answers == [None, None, None] and vote.errors[2].startswith("sample 2: invalid: Your reply was cut")


def test_unsolved_formulations_are_repaired_until_the_vote_is_settled():
    def script(request):
        if request.params.n == 3:
            return [INVALID, GOOD, WRONG]  # 1 against 1: the repaired first formulation decides
        assert request.prompt[-2].content == INVALID and "'Dan'" in request.prompt[-1].content  # the error's line
        return GOOD_TOO

    formulation, backend, result = formulate(script, k=3, answer=["Ann", "Bob", "Cid"])
    assert [r.params.n for r in backend.requests] == [3, 1]
    assert backend.requests[1].params.temperature == 0  # a repair is greedy unless its reply repeated
    assert formulation.answer == {"Ann": 3, "Bob": 1, "Cid": 2} and formulation.confidence == pytest.approx(2 / 3)
    assert [(r.sample, r.round, r.status) for r in formulation.rounds] == [
        (0, 1, "invalid"), (1, 1, "solved"), (2, 1, "solved"), (0, 2, "solved")]
    assert not typed(result, VoteTallied)[0].stopped_early


def test_the_vote_stops_early_without_repairing_a_formulation_that_cannot_matter():
    formulation, backend, result = formulate([GOOD, INVALID, GOOD_TOO], k=3, answer=["Ann", "Bob", "Cid"])
    assert len(backend.requests) == 1  # 2 of 3 agree: the third cannot overtake them, so it is not repaired
    assert formulation.confidence == 1.0 and formulation.answer == {"Ann": 3, "Bob": 1, "Cid": 2}
    [vote] = typed(result, VoteTallied)
    assert vote.stopped_early and vote.cancelled == 1 and vote.answers == [RIGHT, RIGHT]


def test_waves_are_seeded_as_one_n_request_would_be_and_later_waves_are_skipped_once_settled():
    formulation, backend, _ = formulate([GOOD, WRONG, GOOD_TOO, GOOD], k=6, aggregate=EarlyStop(wave=2),
                                        sampling=SamplingParams(max_tokens=2048, seed=5),
                                        answer=["Ann", "Bob", "Cid"])
    assert [(r.params.n, r.params.seed) for r in backend.requests] == [(2, 5), (2, 7)]  # sample i: seed + i
    assert formulation.votes == {'{"Ann": 1, "Bob": 2, "Cid": 3}': 1.0, RIGHT: 3.0}


def test_a_server_sending_fewer_samples_than_asked_leaves_those_formulations_failed():
    def handler(request):
        return Completion(samples=(Sample(text=GOOD),)) if request.params.n == 3 else GOOD

    g = Graph("short")
    g.add(Formulate(k=3, answer=["Ann"], max_rounds=1))
    result = anyio.run(lambda: g.run({"problem": PUZZLE}, backend=FunctionBackend(handler)))
    [vote] = typed(result, VoteTallied)
    assert result.output.answer == {"Ann": 3} and vote.failed == 2 and vote.errors[0] == "sample 1: no reply"


def test_a_formulation_lacking_an_answer_variable_is_repaired_not_solved():
    partial = "Ann Bob in 1..3\nAnn != 1\nAnn != Bob\nBob == 1"
    formulation, backend, _ = formulate([partial, GOOD], answer=["Ann", "Cid"])
    assert "Declare these answer variables: Ann, Cid." in backend.requests[0].prompt[-1].content
    lacking, solved = formulation.rounds
    assert lacking.status == "invalid" and lacking.result is None
    assert lacking.finding.startswith("Your model lacks the answer variable(s) Cid.")
    assert solved.status == "solved" and formulation.answer == {"Ann": 3, "Cid": 2}  # only the answer variables


def test_answer_domains_cut_a_wider_declared_domain_and_refuse_a_disjoint_one():
    wide = "Ann in 0..9\nBob Cid in 1..3\nalldifferent(Ann,Bob,Cid)\nAnn != 1\nBob+1 == Cid"
    formulation, backend, _ = formulate([wide], answer={"Ann": range(1, 4), "Bob": None}, max_rounds=1)
    assert "Ann (domain 1..3), Bob" in backend.requests[0].prompt[-1].content
    assert formulation.status == "solved" and formulation.rounds[0].narrowed == ["Ann"]  # 0..9 alone: ambiguous
    assert formulation.answer == {"Ann": 3, "Bob": 1}
    texts = 'Ann in {"x","y"}\nBob Cid in 1..3'
    formulation, _, _ = formulate([texts], answer={"Ann": [1, 2, 3]}, max_rounds=1)
    assert formulation.status == "invalid"
    assert formulation.rounds[0].finding == "Wrong answer domains: Ann must take values in 1..3 (declared {x, y})."


@pytest.mark.parametrize("answer, culprit", [
    ("Ann", "takes a list of variable names or a dict"),
    (["1x"], "answer variable '1x'"),
    ({"Ann": []}, "answer variable 'Ann' (domain [])"),
    ({"if": None}, "answer variable 'if'"),
])
def test_bad_answer_specs_are_refused_naming_the_culprit(answer, culprit):
    with pytest.raises(ConfigError, match="Formulate") as caught:
        Formulate(answer=answer)
    assert culprit in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("options, message", [
    ({"k": 0}, "k must be >= 1"),
    ({"resample_temperature": 0}, "resample_temperature must be > 0"),
    ({"k": 2, "aggregate": EarlyStop(quorum=3)}, "quorum 3 can never be met with k=2"),
])
def test_bad_vote_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        Formulate(**options)


# -- the guards hold in a vote ----------------------------------------------------------------------------------

SHIFT = "A B in 0..99999\nA == B+100000"  # every assignment fails: the solver runs to its limit


@pytest.mark.timeout(60)
def test_a_node_timeout_stops_a_vote_mid_judging_and_leaves_no_solver_running():
    import threading

    from plait.errors import NodeFailedError, NodeTimeoutError
    from plait.solvers._bridge import WORKER_NAME

    g = Graph("slow_vote")
    g.add(Formulate(k=3, time_limit=60, timeout=0.5))
    with pytest.raises(NodeFailedError) as info:
        anyio.run(lambda: g.run({"problem": "attack"}, backend=FunctionBackend(lambda request: SHIFT)))
    assert isinstance(info.value.cause, NodeTimeoutError)
    assert [t.name for t in threading.enumerate() if t.name == WORKER_NAME and t.is_alive()] == []


def test_a_token_budget_stops_the_repairs_of_a_vote_before_they_are_sent():
    from plait.errors import BudgetExceededError
    from plait.executors import Request
    from plait.solvers._prompts import formulate_messages

    backend = FunctionBackend(lambda request: [INVALID] * request.params.n)
    node = Formulate(k=3, sampling=SamplingParams(max_tokens=300))
    prompt = formulate_messages(PUZZLE, node.example_turns, system=node.syntax.system)
    budget = backend.count_prompt_tokens(Request(prompt=tuple(prompt))) + 3 * 300 + 10  # only the n=3 request fits
    g = Graph("budget_vote")
    g.add(node)
    with pytest.raises(BudgetExceededError):
        anyio.run(lambda: g.run({"problem": PUZZLE}, backend=backend, token_budget=budget))
    assert [r.params.n for r in backend.requests] == [3]  # the first repair did not fit: never sent


def test_rounds_per_formulation_are_bounded_whatever_the_model_writes():
    backend = FunctionBackend(lambda request: [INVALID] * request.params.n)
    g = Graph("bounded_vote")
    g.add(Formulate(k=3, max_rounds=2))
    formulation = anyio.run(lambda: g.run({"problem": PUZZLE}, backend=backend)).output
    assert [r.params.n for r in backend.requests] == [3, 1, 1, 1]  # k first replies, then one repair each
    assert formulation.status == "invalid" and len(formulation.rounds) == 6
    assert sorted((r.sample, r.round) for r in formulation.rounds) == [(s, n) for s in range(3) for n in (1, 2)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replies=st.lists(st.one_of(
    st.text(max_size=200),
    st.sampled_from([GOOD, WRONG, INVALID, SEATS, "A B in 0..99999\nA == B+100000", "{", "x in 1..1\nx == 1"]),
    st.builds(lambda line, n: "\n".join([line] * n), st.sampled_from(["A in 1..9", "A != 1", "# loop"]),
              st.integers(1, 300))), min_size=1, max_size=6))
def test_whatever_the_model_writes_a_vote_ends_within_its_rounds(replies):
    """A hostile model: any text, repeats, loops, unsatisfiable or slow models; the vote always ends with a
    Formulation, at most k * max_rounds rounds, every one judged or re-sampled."""
    calls = iter(range(10_000))

    def handler(request):
        return [replies[next(calls) % len(replies)] for _ in range(request.params.n)]

    g = Graph("hostile_vote")
    g.add(Formulate(k=2, max_rounds=2, time_limit=0.5, answer=["Ann"]))
    formulation = anyio.run(lambda: g.run({"problem": PUZZLE}, backend=FunctionBackend(handler))).output
    assert formulation.status in ("solved", "invalid", "unsat", "ambiguous", "timeout")
    assert 2 <= len(formulation.rounds) <= 4
    assert all(r.status == "repeat" or r.finding is not None or r.status == "solved" for r in formulation.rounds)
    assert (formulation.answer is not None) == (formulation.status == "solved")

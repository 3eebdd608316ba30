"""FanOut votes: n-sampling, every aggregator, ties, failures, quorum, early stop and cancellation."""

import itertools
import time

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait import BudgetExceededError, FunctionBackend, Graph, NodeFailedError, SamplingParams, ScriptedBackend
from plait.errors import VoteError
from plait.executors import Sample
from plait.orchestrator import FunctionNode
from plait.planners import (
    BestOfN, ChainStep, ChoiceParser, EarlyStop, FanOut, LLMJudge, LogprobWeighted, Majority, NumberParser, Quorum,
    TextParser, VoteResult,
)


def solve_step(**kw):
    return ChainStep("Q: {question}\nA:", NumberParser(int, constrain=False), name="solve", **kw)


def vote(fanout: FanOut, backend, question="2+2", **kw) -> VoteResult:
    g = Graph("g")
    g.add(fanout)
    return anyio.run(lambda: g.run({"question": question}, backend=backend, **kw)).output


def test_single_prompt_fanout_sends_one_request_with_n_equal_k():
    backend = ScriptedBackend(["4", "so 4", "5", "4", "3"])
    result = vote(FanOut(solve_step(), k=5), backend)
    assert len(backend.requests) == 1 and backend.requests[0].params.n == 5
    assert backend.requests[0].params.temperature == 0.7  # greedy step: sampled at 0.7 by default
    assert result.winner == 4 and result.distribution == {"4": 3, "5": 1, "3": 1}
    assert result.agreement == pytest.approx(0.6)
    assert (result.samples, result.succeeded, result.failed, result.requests) == (5, 5, 0, 1)
    assert result.completion_tokens == 6 and result.prompt_tokens > 0


def test_explicit_sampling_params_are_used():
    backend = ScriptedBackend(["1", "1"])
    vote(FanOut(solve_step(), k=2, sampling=SamplingParams(temperature=1.0, max_tokens=7, seed=3)), backend)
    sent = backend.requests[0].params
    assert (sent.temperature, sent.max_tokens, sent.seed, sent.n) == (1.0, 7, 3, 2)


def test_normalisation_hook_groups_equivalent_answers():
    step = ChainStep("{question}", TextParser(), name="city")
    backend = ScriptedBackend(["Paris", "paris.", "Lyon"])
    result = vote(FanOut(step, k=3, aggregate=Majority(normalize=lambda s: s.lower().strip("."))), backend)
    assert result.winner == "Paris" and result.distribution == {"paris": 2, "lyon": 1}


@pytest.mark.parametrize("replies, winner", [(["7", "9", "9", "7"], 7), (["9", "7", "7", "9"], 9)])
def test_ties_go_to_the_answer_seen_first(replies, winner):
    result = vote(FanOut(solve_step(), k=4), ScriptedBackend(replies))
    assert result.winner == winner and result.agreement == 0.5


def test_unparsable_samples_are_counted_as_failures():
    result = vote(FanOut(solve_step(), k=4), ScriptedBackend(["4", "no idea", "4", "dunno"]))
    assert result.winner == 4 and (result.succeeded, result.failed) == (2, 2)
    assert len(result.errors) == 2 and "sample 1" in result.errors[0] and "no number" in result.errors[0]
    assert result.agreement == 1.0


def test_all_samples_failing_raises_vote_error_with_the_samples():
    g = Graph("g")
    g.add(FanOut(solve_step(), k=3))
    with pytest.raises(NodeFailedError) as info:
        anyio.run(lambda: g.run({"question": "?"}, backend=ScriptedBackend(["x", "y", "z"])))
    error = info.value.cause
    assert isinstance(error, VoteError)
    assert error.result.failed == 3 and error.result.succeeded == 0
    assert [c.text for c in error.result.candidates] == ["x", "y", "z"]


def test_quorum_not_met_and_met():
    with pytest.raises(NodeFailedError) as info:
        vote(FanOut(solve_step(), k=4, aggregate=Quorum(3)), ScriptedBackend(["4", "?", "4", "?"]))
    assert isinstance(info.value.cause, VoteError) and "needs 3" in str(info.value.cause)
    result = vote(FanOut(solve_step(), k=4, aggregate=Quorum(3)), ScriptedBackend(["4", "?", "4", "5"]))
    assert result.winner == 4 and result.failed == 1 and result.succeeded == 3
    with pytest.raises(ValueError, match="can never be met"):
        FanOut(solve_step(), k=2, aggregate=Quorum(3))


def test_logprob_weighted_vote_prefers_confident_samples_and_asks_for_logprobs():
    replies = [Sample(text="4", completion_tokens=1, cumulative_logprob=-0.1),
               Sample(text="5", completion_tokens=1, cumulative_logprob=-3.0),
               Sample(text="5", completion_tokens=1, cumulative_logprob=-3.0)]
    backend = ScriptedBackend(replies)
    result = vote(FanOut(solve_step(), k=3, aggregate=LogprobWeighted()), backend)
    assert backend.requests[0].params.logprobs == 0
    assert result.winner == 4
    assert result.distribution["4"] > result.distribution["5"]
    assert result.agreement == pytest.approx(0.9048 / (0.9048 + 2 * 0.0498), rel=1e-3)
    assert vote(FanOut(solve_step(), k=3, aggregate=Majority()), ScriptedBackend(replies)).winner == 5


def test_logprob_weighted_vote_without_logprobs_fails_clearly():
    with pytest.raises(NodeFailedError, match=r"was asked for logprobs=0, but its scripted reply '4' is plain text"):
        vote(FanOut(solve_step(), k=2, aggregate=LogprobWeighted()), ScriptedBackend(["4", "4"]))


def test_best_of_n_with_function_scorer_breaks_ties_by_index():
    result = vote(FanOut(solve_step(), k=4, aggregate=BestOfN(lambda value, text: -abs(value - 10))),
                  ScriptedBackend(["3", "12", "8", "20"]))
    assert result.winner == 12  # 12 and 8 both score -2: the earlier sample wins
    assert [c.score for c in result.candidates] == [-7, -2, -2, -10]


def test_best_of_n_with_llm_judge():
    judge = LLMJudge("Rate the answer {candidate} to {question} from 0 to 10:")
    backend = ScriptedBackend(lambda r: {"Q:": ["3", "4", "5"]}.get(r.prompt[:2]) or
                              ("9" if "answer 4 " in r.prompt_text() else "1"))
    result = vote(FanOut(solve_step(), k=3, aggregate=BestOfN(judge)), backend)
    assert result.winner == 4 and result.distribution == {"3": 1.0, "4": 9.0, "5": 1.0}
    assert len(backend.requests) == 4 and result.requests == 4
    judged = [r.prompt for r in backend.requests[1:]]
    assert "Rate the answer 3 to 2+2 from 0 to 10:" in judged
    with pytest.raises(ValueError, match="candidate"):
        LLMJudge("no placeholder")


def test_best_of_n_with_a_model_judge_needs_the_run_context():
    from plait.planners import Candidate

    candidates = [Candidate(index=0, value=4, text="4")]
    with pytest.raises(VoteError, match="BestOfN's scorer LLMJudge calls the model: pass the run context"):
        anyio.run(BestOfN(LLMJudge("{candidate}?")).decide, candidates)
    decided = anyio.run(BestOfN(lambda value, text: value).decide, candidates)  # a plain scorer needs none
    assert decided.winner_index == 0


def test_best_of_n_with_a_judge_chain_step_and_yes_no_scores():
    judge_step = ChainStep("Is {candidate} correct for {question}? yes/no:", ChoiceParser(["yes", "no"]), name="j")
    judge = LLMJudge(judge_step, to_score={"yes": 1.0, "no": 0.0}.get)
    backend = ScriptedBackend(lambda r: ["3", "4"] if r.prompt.startswith("Q:") else
                              ("yes" if r.prompt.startswith("Is 4 ") else "no"))
    result = vote(FanOut(solve_step(), k=2, aggregate=BestOfN(judge)), backend)
    assert result.winner == 4 and [c.score for c in result.candidates] == [0.0, 1.0]
    assert backend.requests[1].params.constraint is not None  # the judge's choice constraint was sent


def test_early_stop_sends_fewer_requests_once_the_leader_cannot_be_overtaken():
    backend = ScriptedBackend(["4"] * 8)
    result = vote(FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=2)), backend)
    # after 2 waves: 4 votes for 4, 4 to come: a rival could at best tie, and a tie goes to the answer seen first.
    assert [r.params.n for r in backend.requests] == [2, 2]
    assert result.samples == 4 and result.stopped_early and result.winner == 4
    assert backend.remaining == ["4"] * 4


def test_seeded_waves_draw_the_seeds_one_n_request_would():
    # vLLM seeds sample i of an n-request with seed + i, so wave w starts at seed + (samples drawn so far):
    # an early-stopping vote then draws exactly the first samples of the full vote.
    backend = ScriptedBackend(["4", "5", "4", "5", "4", "5", "4", "5"])
    params = SamplingParams(temperature=0.8, seed=100)
    vote(FanOut(solve_step(), k=8, sampling=params, aggregate=EarlyStop(wave=3)), backend)
    assert [(r.params.seed, r.params.n) for r in backend.requests] == [(100, 3), (103, 3), (106, 2)]
    unseeded = ScriptedBackend(["4", "5", "4", "5"])
    vote(FanOut(solve_step(), k=4, aggregate=EarlyStop(wave=2)), unseeded)
    assert [r.params.seed for r in unseeded.requests] == [None, None]


def test_early_stop_with_confidence_threshold_stops_after_first_wave():
    backend = ScriptedBackend(["4", "4", "4", "5"] + ["4"] * 4)
    result = vote(FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=4, confidence=0.75)), backend)
    assert len(backend.requests) == 1 and result.samples == 4 and result.stopped_early
    assert result.completion_tokens == 4  # tokens of 4 samples, not 8


def test_early_stop_keeps_sampling_while_the_vote_is_open():
    backend = ScriptedBackend(["4", "5", "4", "5", "4", "5", "4", "5"])
    result = vote(FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=2)), backend)
    assert len(backend.requests) == 4 and not result.stopped_early and result.winner == 4


def test_early_stop_counts_the_tie_rule_both_ways():
    # 4 votes to 2 with 2 to come: the runner-up can only tie. Seen second, it would lose the tie: settled.
    leader_first = ScriptedBackend(["4", "5", "4", "5", "4", "4", "5", "5"])
    result = vote(FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=2)), leader_first)
    assert len(leader_first.requests) == 3 and result.stopped_early and result.winner == 4
    # Seen first, the runner-up would win a 4-4 tie: the vote stays open until one more sample settles it.
    runner_up_first = ScriptedBackend(["5", "4", "4", "5", "4", "4", "4", "5"])
    result = vote(FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=1)), runner_up_first)
    assert len(runner_up_first.requests) == 7 and result.stopped_early and result.winner == 4


@settings(max_examples=200, deadline=None)
@given(answers=st.lists(st.sampled_from([1, 2, 3, None]), min_size=1, max_size=9).filter(lambda a: any(a)),
       wave=st.integers(1, 4))
def test_early_stop_without_confidence_never_changes_the_full_votes_winner(answers, wave):
    replies = ["x" if a is None else str(a) for a in answers]  # "x" does not parse: a failed sample
    full = vote(FanOut(solve_step(), k=len(answers)), ScriptedBackend(list(replies)))
    early = vote(FanOut(solve_step(), k=len(answers), aggregate=EarlyStop(wave=wave)), ScriptedBackend(list(replies)))
    assert early.winner == full.winner
    assert early.samples <= full.samples


def test_early_stop_with_concurrent_samples_waits_for_an_earlier_pending_sample():
    # Samples 1 and 2 answer 5 at once; samples 0 and 3 are slow and answer 4. After the fast two, 5 leads 2-0
    # with 2 to come, but those 2 include sample 0: a 2-2 tie would go to 4 (seen first). The vote must wait.
    started = itertools.count()

    async def attempt(question: str) -> int:
        index = next(started)
        await anyio.sleep(0.2 if index in (0, 3) else 0.0)
        return 4 if index in (0, 3) else 5

    full_vote_winner = 4
    result = vote(FanOut(FunctionNode(attempt, name="attempt"), k=4, aggregate=EarlyStop(wave=4)),
                  ScriptedBackend([]))
    assert result.winner == full_vote_winner and result.samples == 4 and not result.stopped_early


def _sample_graph() -> Graph:
    sub = Graph("attempt")
    sub.chain(ChainStep("Q: {question}\nA:", NumberParser(int), name="solve"),
              ChainStep("Check {n}:", NumberParser(int), inputs={"n": int}, name="check"))
    return sub


def test_subgraph_fanout_runs_k_copies_and_counts_their_tokens():
    backend = ScriptedBackend(lambda r: "4" if r.prompt_text().startswith("Q:") else r.prompt_text()[6])
    g = Graph("g")
    g.add(FanOut(_sample_graph(), k=3, name="vote"))
    result = anyio.run(lambda: g.run({"question": "2+2"}, backend=backend))
    out = result.output
    assert out.winner == 4 and out.samples == 3 and out.requests == 6
    assert out.tokens == result.tokens.total
    assert "vote[2]/check" in result.nodes


def test_early_stop_cancels_outstanding_subgraph_samples():
    calls = itertools.count()
    backend = FunctionBackend(lambda r: "4", latency=lambda r: 0.01 if next(calls) < 3 else 30.0)
    sub = Graph("attempt")
    sub.add(ChainStep("Q: {question}\nA:", NumberParser(int), name="solve"))
    fan = FanOut(sub, k=8, aggregate=EarlyStop(wave=4, confidence=1.0, min_samples=3), name="vote")
    t0 = time.perf_counter()
    result = vote(fan, backend)
    assert time.perf_counter() - t0 < 20  # the 30 s sample was cancelled, not awaited
    assert len(backend.requests) == 4  # one wave of 4 started; the second wave was never sent
    assert result.samples == 3 and result.cancelled == 1 and result.stopped_early
    assert result.requests == 3  # only finished requests reported tokens


@pytest.mark.timeout(30)
def test_failing_subgraph_samples_are_counted_under_a_run_concurrency_cap():
    calls = itertools.count()

    def reply(request):  # the second sample and its re-asks never parse
        return "oops" if next(calls) == 1 or "could not be used" in request.prompt_text() else "4"

    sub = Graph("attempt")
    sub.add(ChainStep("Q: {question}\nA:", NumberParser(int), name="solve"))
    g = Graph("g")
    g.add(FanOut(sub, k=3, aggregate=Quorum(2), name="vote"))
    backend = FunctionBackend(reply)
    # max_concurrency=1: the fan-out must not hold the run's slot while its subgraphs wait for it.
    result = anyio.run(lambda: g.run({"question": "2+2"}, backend=backend, max_concurrency=1)).output
    assert result.succeeded == 2 and result.failed == 1 and len(backend.requests) == 5
    assert "ParseError" in result.errors[0] and "3 attempt(s)" in result.errors[0]


def test_winner_only_composes_with_downstream_nodes():
    g = Graph("g")
    fan = g.add(FanOut(solve_step(), k=3, winner_only=True, name="vote"))
    assert fan.output_type is int

    @g.node
    def double(vote: int) -> int:
        return vote * 2

    g.edge(fan, double)
    result = anyio.run(lambda: g.run({"question": "?"}, backend=ScriptedBackend(["4", "4", "1"])))
    assert result.output == 8
    events = [e for e in result.events if getattr(e, "name", None) == "vote"]
    assert events and events[0].data["winner"] == "4"


def test_budget_exhaustion_stops_the_run():
    with pytest.raises(BudgetExceededError):
        vote(FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=1)), ScriptedBackend(["4", "5"] * 4),
             token_budget=12)


def test_early_stop_in_waves_of_one_needs_two_agreeing_samples_by_default():
    backend = ScriptedBackend(["4", "4", "4", "4", "4", "4", "4", "4"])
    result = vote(FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=1, confidence=0.75)), backend)
    assert [r.params.n for r in backend.requests] == [1, 1] and result.samples == 2 and result.stopped_early
    split = ScriptedBackend(["4", "5", "4", "4", "5", "5", "5", "5"])
    result = vote(FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=1, confidence=0.75)), split)
    assert result.samples == 4 and result.winner == 4  # 3 of 4 agree: 0.75 of the votes


def test_samples_cut_off_at_max_tokens_fail_unless_kept():
    params = SamplingParams(temperature=0.7, max_tokens=4)
    backend = ScriptedBackend(["so it is 5", "2 + 2 = 4 and so on and on", "4", "ok 5"])
    result = vote(FanOut(solve_step(), k=4, sampling=params), backend)
    assert result.winner == 5 and result.failed == 1  # the cut-off sample ("2 + 2 =") does not vote
    assert "cut off at max_tokens=4" in result.errors[0] and "keep_truncated=True" in result.errors[0]
    kept = vote(FanOut(solve_step(), k=4, sampling=params, keep_truncated=True), ScriptedBackend(["so it is 5", "2 + 2 = 4 and so on and on", "4", "ok 5"]))
    assert kept.failed == 0 and kept.distribution == {"5": 2, "2": 1, "4": 1}


def test_early_stop_by_margin_stops_once_the_leader_is_that_far_ahead():
    def run(replies, **rule):
        backend = ScriptedBackend(list(replies))
        return vote(FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=1, **rule)), backend), backend

    result, backend = run(["4", "4"] + ["5"] * 6, margin=2)
    assert result.samples == 2 and result.winner == 4 and len(backend.requests) == 2
    result, _ = run(["4", "5", "4", "6", "4"] + ["5"] * 3, margin=2)
    assert result.samples == 5 and result.winner == 4  # 3-1-1 after five samples
    result, _ = run(["4", "5", "4", "5", "6", "7", "8", "9"], margin=2)
    assert result.samples == 8 and not result.stopped_early and result.winner == 4  # never 2 ahead: all drawn
    result, _ = run(["4", "4", "5", "5", "5", "5", "5", "5"], margin=2, min_samples=3)
    assert result.samples == 6 and result.winner == 5  # 2-0 too early to count; 5 settles the vote at 4 of 6
    with pytest.raises(ValueError, match="margin must be >= 1"):
        EarlyStop(margin=0)


def test_early_stop_gives_up_once_failures_outnumber_the_leader_by_the_failure_margin():
    params = SamplingParams(temperature=0.7, max_tokens=6)
    ramble = "let me think about this at length"  # cut off at max_tokens: a failed sample

    def run(replies, **rule):
        backend = ScriptedBackend(list(replies))
        fan = FanOut(solve_step(), k=8, sampling=params, aggregate=EarlyStop(wave=1, **rule))
        return vote(fan, backend), backend

    result, backend = run([ramble, "4", ramble, ramble, ramble] + ["5"] * 3, failure_margin=3)
    assert result.samples == 5 and result.failed == 4 and result.winner == 4 and result.stopped_early
    assert len(backend.requests) == 5
    result, _ = run([ramble, "4", ramble, ramble, "5", ramble, "4", "4"], failure_margin=3)
    assert result.samples == 6 and result.winner == 4  # 3 failed vs 1 vote went on; 4 vs 1 stopped
    with pytest.raises(NodeFailedError, match="only 0 of 3 samples succeeded"):
        run([ramble] * 3 + ["4"] * 5, failure_margin=3)
    with pytest.raises(ValueError, match="failure_margin must be >= 1"):
        EarlyStop(failure_margin=0)

"""Adaptive width then depth: the three paths (agree early, widen, deepen) with scripted samples, the record of
stages and tokens, skipped stages, bad settings, and a budget that no sequence of replies can exceed."""

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait import ConfigError, Graph, NodeFailedError, SamplingParams, ScriptedBackend
from plait.errors import VoteError
from plait.executors import Completion, Sample
from plait.orchestrator import Custom
from plait.planners import Adaptive, AdaptiveResult, ChainStep, NumberParser

PROMPT = "Q: {question}\nA:"  # "Q: 2+2\nA:" is 7 tokens for the scripted backends (words and punctuation)


def solve(max_tokens=10):
    return ChainStep(PROMPT, NumberParser(int, constrain=False), name="solve",
                     sampling=SamplingParams(max_tokens=max_tokens) if max_tokens else None)


def run(node, backend, **kw):
    g = Graph("g")
    g.add(node)
    return anyio.run(lambda: g.run({"question": "2+2"}, backend=backend, **kw))


def decide(node, replies) -> tuple[AdaptiveResult, ScriptedBackend]:
    backend = ScriptedBackend(list(replies))
    return run(node, backend).output, backend


def worst_case(backend) -> int:
    return sum(backend.count_prompt_tokens(r) + r.params.max_tokens * r.params.n for r in backend.requests)


def test_a_wave_that_agrees_stops_early():
    result, backend = decide(Adaptive(solve(), budget=200), ["4", "4", "4"])
    assert result.path == "agree" and result.winner == 4
    assert [(r.params.n, r.params.temperature) for r in backend.requests] == [(3, 0.7)]
    [wave] = result.stages
    assert (wave.stage, wave.samples, wave.tokens, wave.distribution) == ("wave", 3, 7 + 3, {"4": 3})
    assert result.tokens == 10


def test_a_split_wave_widens_and_stops_when_the_vote_settles():
    result, backend = decide(Adaptive(solve(), budget=200), ["4", "5", "4", "4", "4", "6"])
    assert result.path == "widen" and result.winner == 4
    assert [r.params.n for r in backend.requests] == [3, 3]  # max_width defaults to 2 * wave
    assert [(s.stage, s.samples, s.tokens) for s in result.stages] == [("wave", 3, 10), ("widen", 3, 10)]
    assert result.stages[1].distribution == {"4": 4, "5": 1, "6": 1}
    assert result.stages[1].agreement == pytest.approx(4 / 6)


def test_a_vote_still_split_goes_deeper_with_what_is_left():
    replies = ["4", "5", "6", "5", "4", "6", "so the answer is 5"]
    result, backend = decide(Adaptive(solve(), budget=200), replies)
    assert result.path == "deepen" and result.winner == 5
    deep = backend.requests[2]
    assert deep.params.n == 1 and deep.params.temperature == 0.0  # the step's own (greedy) chain
    assert deep.params.max_tokens == 200 - 20 - 7  # every token left after the wave, the widening and its prompt
    assert [s.stage for s in result.stages] == ["wave", "widen", "deepen"]
    assert result.stages[2].answer == "5" and result.stages[2].tokens == 7 + 5
    assert result.tokens == sum(s.tokens for s in result.stages) <= 200


def test_a_refine_pass_sees_the_leading_answers():
    refine = ChainStep("Q: {question}\nAnswers so far:\n{candidates}\nWhich is right? A:",
                       NumberParser(int, constrain=False), name="refine")
    replies = ["4", "5", "6", "5", "4", "7", "4"]
    result, backend = decide(Adaptive(solve(), budget=300, deepen=refine, lead=2), replies)
    prompt = backend.requests[2].prompt
    assert "Candidate 1 (2 of 6 samples): 4\n\nCandidate 2 (2 of 6 samples): 5\nWhich" in prompt
    assert "Candidate 3" not in prompt and result.winner == 4 and result.path == "deepen"


def test_a_failed_deep_pass_leaves_the_vote_leader():
    result, _ = decide(Adaptive(solve(), budget=200), ["4", "5", "6", "5", "4", "5", "no idea"])
    assert result.path == "deepen" and result.winner == 5
    assert "the deep pass failed" in result.stages[2].note and result.stages[2].answer is None


def test_stages_the_budget_cannot_hold_are_skipped_and_say_why():
    long = [f"a b c d e f g h {n}" for n in (4, 5, 6, 5)]  # 9 tokens each
    # wave: 7 + 3 x 9 = 34 spent of 60; widening: one sample fits (7 + 10); then 10 left < 7 + 10
    result, backend = decide(Adaptive(solve(), budget=60), long)
    assert [r.params.n for r in backend.requests] == [3, 1]
    assert result.path == "deepen" and result.stages[2].note.startswith("skipped: 10 tokens left")
    assert result.winner == 5 and result.tokens == 34 + 16
    narrow, backend = decide(Adaptive(solve(), budget=37), long[:3])
    assert len(backend.requests) == 1 and narrow.stages[1].note.startswith("skipped: 3 tokens left hold no sample")


def test_the_widening_draws_only_what_fits_and_the_deep_pass_the_rest():
    result, backend = decide(Adaptive(solve(), budget=45, max_width=8), ["4", "5", "6", "4", "5", "5"])
    assert [r.params.n for r in backend.requests] == [3, 2, 1]  # 35 left after the wave: a prompt and 2 samples
    assert backend.requests[2].params.max_tokens == 45 - 10 - 9 - 7
    assert result.path == "deepen" and result.winner == 5 and result.tokens == 10 + 9 + 8


def test_a_budget_without_max_tokens_is_split_into_shares():
    result, backend = decide(Adaptive(solve(max_tokens=None), budget=300, wave=2, max_width=4), ["4", "4"])
    assert backend.requests[0].params.max_tokens == (300 - 3 * 7) // 5 == result.max_tokens


def test_the_path_is_emitted_as_an_event():
    events = run(Adaptive(solve(), budget=200), ScriptedBackend(["4", "4", "4"])).events
    [event] = [e for e in events if isinstance(e, Custom) and e.name == "adaptive"]
    assert event.data["path"] == "agree" and event.data["tokens"] == 10 and event.data["stages"][0]["samples"] == 3


def test_no_answer_anywhere_is_a_vote_error_with_the_record():
    with pytest.raises(NodeFailedError) as info:
        run(Adaptive(solve(), budget=200), ScriptedBackend(["x"] * 7))
    error = info.value.cause
    assert isinstance(error, VoteError) and error.result.path == "deepen" and len(error.result.errors) == 7


def test_a_budget_that_cannot_hold_the_first_wave_sends_nothing():
    backend = ScriptedBackend(["4"] * 3)
    with pytest.raises(NodeFailedError, match=r"budget=30 \(30 tokens left\) cannot hold the first wave"):
        run(Adaptive(solve(), budget=30), backend)
    assert backend.requests == []


def test_an_over_reporting_server_stops_the_spending():
    backend = ScriptedBackend(lambda request: Completion(
        samples=tuple(Sample(text=t, completion_tokens=500) for t in "456"), prompt_tokens=7))
    result = run(Adaptive(solve(), budget=200), backend).output
    assert len(backend.requests) == 1 and result.stages[1].note.startswith("skipped: 0 tokens left")
    assert result.stages[2].note.startswith("skipped: 0 tokens left")


@pytest.mark.parametrize("kwargs, message", [
    ({"wave": 1}, "wave must be >= 2 samples"),
    ({"wave": 4, "max_width": 3}, "max_width must be >= wave (4)"),
    ({"agree": 0}, "agree is a share of the samples"),
    ({"settle": 1.5}, "settle is a share of the samples"),
    ({"lead": 0}, "lead must be >= 1"),
    ({"budget": 0}, "budget must be a whole number of tokens >= 1"),
    ({"budget": None}, "budget= (tokens for every stage) is required"),
    ({"deepen": ChainStep("{question} {hint}", name="refine")}, "uses ['hint'], which are neither inputs"),
])
def test_bad_settings_are_refused_when_the_node_is_built(kwargs, message):
    with pytest.raises(ConfigError) as info:
        Adaptive(solve(), **{"budget": 200, **kwargs})
    assert message in str(info.value)


def test_the_steps_own_budget_is_refused():
    step = ChainStep(PROMPT, NumberParser(int), name="solve", budget=100)
    with pytest.raises(ConfigError, match="'solve' has its own budget=100"):
        Adaptive(step, budget=200)


@settings(max_examples=150, deadline=None)
@given(budget=st.integers(30, 400), max_tokens=st.integers(1, 30), wave=st.integers(2, 4),
       extra=st.integers(0, 4), replies=st.lists(st.sampled_from(["4", "5", "x", "thinking " * 40 + "4"]),
                                                 min_size=1, max_size=8))
def test_no_sequence_of_replies_takes_the_node_over_its_budget(budget, max_tokens, wave, extra, replies):
    backend = ScriptedBackend(replies * 20)
    node = Adaptive(solve(max_tokens), budget=budget, wave=wave, max_width=wave + extra)
    try:
        result = run(node, backend).output
    except NodeFailedError as error:
        assert isinstance(error.cause, (ConfigError, VoteError)), error.cause
        if isinstance(error.cause, ConfigError):
            assert backend.requests == []
            return
        result = error.cause.result
    assert result.tokens <= budget and result.path in ("agree", "widen", "deepen")
    sent = [s for s in result.stages if s.samples]
    assert len(sent) == len(backend.requests)
    spent = 0
    for stage, request in zip(sent, backend.requests):  # each request's worst case fitted what was left
        assert backend.count_prompt_tokens(request) + request.params.max_tokens * request.params.n <= budget - spent
        spent += stage.tokens


def test_the_deep_path_replays_without_a_backend(tmp_path):
    g = Graph("g")
    g.add(Adaptive(solve(), budget=200))
    replies = iter(["4", "5", "6", "5", "4", "6", "so 5"])
    backend = ScriptedBackend(lambda r: [next(replies) for _ in range(r.params.n)])
    path = tmp_path / "runs.db"
    recorded = anyio.run(lambda: g.run({"question": "2+2"}, backend=backend, checkpoint=path, run_id="r"))
    replayed = anyio.run(lambda: g.run(checkpoint=path, run_id="r", replay=True))
    assert recorded.output.path == replayed.output.path == "deepen"
    assert replayed.output.winner == recorded.output.winner == 5
    assert replayed.output.stages == recorded.output.stages


def test_stages_go_to_the_steps_model_and_a_refine_pass_to_its_own():
    small = ScriptedBackend(["4", "5", "6", "5", "4", "6"])
    large = ScriptedBackend(["so 5"])
    step = ChainStep(PROMPT, NumberParser(int, constrain=False), name="solve", model="small",
                     sampling=SamplingParams(max_tokens=10))
    refine = ChainStep("Q: {question}\n{candidates}\nA:", NumberParser(int, constrain=False), name="refine",
                       model="large")
    g = Graph("g")
    node = g.add(Adaptive(step, budget=300, deepen=refine))
    assert node.models_used() == {"small", "large"}
    result = anyio.run(lambda: g.run({"question": "2+2"}, backends={"small": small, "large": large}))
    assert [r.params.n for r in small.requests] == [3, 3] and len(large.requests) == 1
    assert result.output.winner == 5 and result.output.tokens <= 300
    assert set(result.tokens_by_model) == {"small", "large"}

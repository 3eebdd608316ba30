"""Token budgets as the unit of a reasoning node: ChainStep(budget=) is one chain of b tokens, FanOut(budget=)
k samples of b/k tokens or as many samples as fit; bad combinations and budgets too small for the prompt are
clear errors; no request is sent whose worst case could take the node over its budget."""

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait import ConfigError, Graph, NodeFailedError, ParseError, SamplingParams, ScriptedBackend
from plait.errors import VoteError
from plait.orchestrator import FunctionNode
from plait.planners import BestOfN, ChainStep, EarlyStop, FanOut, LLMJudge, NumberParser, Quorum, TextParser
from plait.planners._budget_split import samples_that_fit, split_vote, tokens_per_sample

PROMPT = "Q: {question}\nA:"  # "Q: 2+2\nA:" is 7 tokens for the scripted backends (words and punctuation)


def solve(**kw):
    return ChainStep(PROMPT, NumberParser(int, constrain=False), name="solve", **kw)


def run(node, backend, question="2+2", **kw):
    g = Graph("g")
    g.add(node)
    return anyio.run(lambda: g.run({"question": question}, backend=backend, **kw))


def worst_case(backend) -> int:
    return sum(backend.count_prompt_tokens(r) + r.params.max_tokens * r.params.n for r in backend.requests)


def test_a_chain_step_with_a_budget_is_one_chain_of_what_the_prompt_leaves():
    backend = ScriptedBackend(["so the answer is 4"])
    result = run(solve(budget=50), backend)
    assert backend.requests[0].params.max_tokens == 50 - 7
    assert result.output == 4 and result.nodes["solve"].tokens.total <= 50


def test_a_chain_cut_by_its_budget_fails_to_parse_without_exceeding_it():
    backend = ScriptedBackend(["thinking " * 100 + "4"])
    with pytest.raises(NodeFailedError) as info:
        run(solve(budget=20, max_reasks=2), backend)
    error = info.value.cause
    assert isinstance(error, ParseError) and "within budget=20 tokens after 1 attempt(s)" in str(error)
    assert len(backend.requests) == 1 and worst_case(backend) == 20


def test_re_asks_get_what_the_budget_has_left():
    backend = ScriptedBackend(["no idea", "4"])
    result = run(solve(budget=60), backend)
    first, second = backend.requests
    spent = 7 + 2  # the first call's prompt and reply
    assert first.params.max_tokens == 53
    assert second.params.max_tokens == 60 - spent - backend.count_prompt_tokens(second)
    assert result.output == 4 and result.nodes["solve"].tokens.total <= 60


def test_a_budget_that_cannot_hold_the_prompt_is_a_clear_error():
    backend = ScriptedBackend(["4"])
    with pytest.raises(NodeFailedError) as info:
        run(solve(budget=5), backend)
    assert isinstance(info.value.cause, ConfigError)
    assert "the budget left (5 tokens) cannot hold the prompt (7 tokens) and a reply" in str(info.value.cause)
    assert backend.requests == []


@pytest.mark.parametrize("budget", [0, -3, 2.5, True, "100"])
def test_a_budget_must_be_a_positive_whole_number(budget):
    with pytest.raises(ConfigError, match=r"ChainStep 'solve': budget must be a whole number of tokens >= 1"):
        solve(budget=budget)


def test_budget_and_max_tokens_together_are_refused():
    with pytest.raises(ConfigError, match="give budget= .* or sampling max_tokens=64, not both"):
        solve(budget=100, sampling=SamplingParams(max_tokens=64))


def test_a_fanout_budget_with_k_gives_each_sample_an_equal_share():
    backend = ScriptedBackend(["4"] * 4)
    result = run(FanOut(solve(), k=4, budget=407), backend).output
    (request,) = backend.requests
    assert (request.params.n, request.params.max_tokens) == (4, (407 - 7) // 4)
    assert (result.k, result.max_tokens) == (4, 100) and result.tokens <= 407


def test_a_fanout_budget_with_max_tokens_draws_as_many_samples_as_fit():
    backend = ScriptedBackend(["4"] * 10)
    step = solve(sampling=SamplingParams(max_tokens=30))
    result = run(FanOut(step, budget=200), backend).output
    assert backend.requests[0].params.n == (200 - 7) // 30 == result.k == 6
    assert backend.requests[0].params.max_tokens == 30


def test_waves_and_variants_pay_their_prompts_out_of_the_budget():
    step = ChainStep("Q: {question}\n{variant}\nA:", NumberParser(int, constrain=False), name="solve")
    backend = ScriptedBackend(lambda r: "4" if "up" in r.prompt else "5")
    fan = FanOut(step, k=4, budget=300, variants=["up", "down"], aggregate=EarlyStop(wave=2))
    result = run(fan, backend).output
    prompt = backend.count_prompt_tokens(backend.requests[0])  # 8: both variants are one word
    assert [r.params.max_tokens for r in backend.requests] == [(300 - 4 * prompt) // 4] * 4  # 2 waves x 2 variants
    assert worst_case(backend) <= 300 and result.tokens <= 300


def test_fanout_budget_errors_name_the_fix():
    with pytest.raises(ConfigError, match="budget=, k= and max_tokens all given"):
        FanOut(solve(sampling=SamplingParams(max_tokens=30)), k=4, budget=500)
    with pytest.raises(ConfigError, match=r"budget= needs k= .* or the step's max_tokens"):
        FanOut(solve(), budget=500)
    for fan_budget in (500, None):  # a step's own budget would be ignored by the vote, which sends its prompt
        with pytest.raises(ConfigError, match="its step 'solve' has its own budget=50, which its samples would not"):
            FanOut(solve(budget=50), k=2, budget=fan_budget)

    async def attempt(question: str) -> int:
        return 4

    with pytest.raises(ConfigError, match="'attempt' is a FunctionNode: give its own nodes a budget"):
        FanOut(FunctionNode(attempt, name="attempt"), k=2, budget=500)
    with pytest.raises(ConfigError, match="leaves nothing for the judge's model calls"):
        FanOut(solve(), k=2, budget=500, aggregate=BestOfN(LLMJudge("Rate {candidate}")))
    with pytest.raises(ConfigError, match="leaves nothing for the judge's model calls"):
        FanOut(solve(), k=2, budget=500, aggregate=Quorum(2, BestOfN(LLMJudge("Rate {candidate}"))))
    FanOut(solve(), k=2, budget=500, aggregate=BestOfN(lambda answer, text: -len(text)))  # a plain scorer is fine


def test_a_fanout_budget_too_small_for_the_prompts_sends_nothing():
    backend = ScriptedBackend(["4"] * 4)
    with pytest.raises(NodeFailedError, match=r"budget=10 cannot hold 4 samples: their prompts alone cost 7"):
        run(FanOut(solve(), k=4, budget=10), backend)
    with pytest.raises(NodeFailedError, match=r"cannot hold one sample of max_tokens=30 with its prompt \(37"):
        run(FanOut(solve(sampling=SamplingParams(max_tokens=30)), budget=36), backend)
    assert backend.requests == []


def test_a_quorum_the_budget_cannot_hold_is_refused_before_sending():
    backend = ScriptedBackend(["4"] * 4)
    with pytest.raises(NodeFailedError, match="holds 2 sample.* fewer than the quorum of 3"):
        run(FanOut(solve(sampling=SamplingParams(max_tokens=30)), aggregate=Quorum(3), budget=70), backend)
    assert backend.requests == []


def test_the_run_budget_still_applies_inside_a_node_budget():
    backend = ScriptedBackend(["thinking " * 200])
    result = run(ChainStep(PROMPT, TextParser(), name="solve", budget=500), backend, token_budget=100)
    assert len(backend.requests) == 1 and backend.requests[0].params.max_tokens == 100 - 7  # the run's 100 bind
    assert result.tokens.total == 100


def test_split_rules():
    assert tokens_per_sample("x", 100, 20, 8) == 10
    assert samples_that_fit("x", 100, lambda k: 10, 30) == 3
    assert samples_that_fit("x", 100, lambda k: 10 * k, 20) == 3  # a prompt per sample: 3 x (10 + 20) = 90
    assert samples_that_fit("x", 10**9, lambda k: 10, 1) == 10**9 - 10
    # 3 variants' prompts, waves of 2: waves draw variants {0, 1}, {2, 0}, {1, 2}, {0}...
    assert split_vote("x", 200, [10, 12, 14], 2, k=None, max_tokens=20) == (6, 20)  # 72 + 6 x 20 = 192
    assert split_vote("x", 200, [10, 12, 14], 2, k=3, max_tokens=256) == (3, (200 - 22 - 14) // 3)
    assert split_vote("x", 200, [10, 12, 14], None, k=3, max_tokens=256) == (3, (200 - 36) // 3)


@settings(max_examples=150, deadline=None)
@given(budget=st.integers(20, 600), k=st.one_of(st.none(), st.integers(1, 12)),
       wave=st.one_of(st.none(), st.integers(1, 4)),
       variants=st.integers(0, 3), max_tokens=st.integers(1, 80), words=st.integers(0, 120))
def test_a_fanout_never_sends_more_than_its_budget_can_pay(budget, k, wave, variants, max_tokens, words):
    template = "Q: {question}\n{variant}\nA:" if variants else PROMPT
    sampling = None if k is not None else SamplingParams(max_tokens=max_tokens)
    step = ChainStep(template, NumberParser(int, constrain=False), name="solve", sampling=sampling)
    backend = ScriptedBackend(lambda r: "step " * words + "4")  # long replies are cut off at max_tokens
    fan = FanOut(step, k=k, budget=budget, aggregate=EarlyStop(wave=wave) if wave else None,
                 variants=[f"hint {i}" for i in range(variants)] or None)
    try:
        result = run(fan, backend)
    except NodeFailedError as error:  # too small a budget, or every sample cut off: nothing over budget either way
        assert isinstance(error.cause, (ConfigError, VoteError)), error.cause

    else:
        assert result.output.tokens <= budget
    assert worst_case(backend) <= budget


@pytest.mark.parametrize("node", [
    lambda: solve(budget=40),
    lambda: FanOut(solve(), k=3, budget=100, aggregate=EarlyStop(wave=2)),
    lambda: FanOut(solve(sampling=SamplingParams(max_tokens=12)), budget=100),
], ids=["chain", "fanout-k", "fanout-max-tokens"])
def test_budgeted_nodes_replay_without_a_backend(node, tmp_path):
    # The split depends on prompt token counts: the checkpoint records them, so a replay sizes requests the same.
    g = Graph("g")
    g.add(node())
    backend = ScriptedBackend(lambda r: ["so 4"] * r.params.n)
    path = tmp_path / "runs.db"
    recorded = anyio.run(lambda: g.run({"question": "2+2"}, backend=backend, checkpoint=path, run_id="r"))
    replayed = anyio.run(lambda: g.run(checkpoint=path, run_id="r", replay=True))
    assert replayed.status == recorded.status == "ok"
    assert replayed.tokens.total == recorded.tokens.total > 0


def test_a_budgeted_vote_sizes_and_sends_with_its_steps_model():
    # The default backend counts prompts by bytes (an upper bound); the step's named backend counts words. The
    # split must use the backend that serves the requests, and the tokens count under its name.
    small = ScriptedBackend(["4"] * 4)
    step = ChainStep(PROMPT, NumberParser(int, constrain=False), name="solve", model="small")
    g = Graph("g")
    g.add(FanOut(step, k=4, budget=407))
    result = anyio.run(lambda: g.run({"question": "2+2"}, backends={"small": small}))
    assert small.requests[0].params.max_tokens == (407 - 7) // 4
    assert result.output.winner == 4 and result.output.tokens <= 407

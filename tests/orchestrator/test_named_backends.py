"""Named backends: each node's requests land on the backend it names; names are checked before anything runs."""

import json

import anyio
import pytest

from plait import (BudgetExceededError, ConfigError, FunctionBackend, Graph, NodeFailedError,
                   PlanAndExecute, Request, RunContext, SamplingParams, ScriptedBackend)
from plait.errors import GraphError
from plait.executors import ToolRegistry, tool
from plait.orchestrator import TokensUsed
from plait.planners import BestOfN, ChainStep, FanOut, LLMJudge, NumberParser
from plait.solvers import Formulate

pytestmark = pytest.mark.anyio


def echo(tag: str) -> ScriptedBackend:
    """A backend that answers ``TAG:<prompt>``, so every reply says where its request went."""
    return ScriptedBackend(lambda request: f"{tag}:{request.prompt_text()}")


@pytest.fixture
def pair():
    return {"small": echo("S"), "large": echo("L")}


def prompts(backend: ScriptedBackend) -> list[str]:
    return [r.prompt_text() for r in backend.requests]


def two_model_graph() -> Graph:
    g = Graph("two")

    @g.node(model="small")
    async def draft(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=f"draft {q}"))).text

    @g.node(model="large")
    async def verify(draft: str, ctx: RunContext) -> str:
        checked = (await ctx.generate(Request(prompt=f"verify {draft}"))).text
        again = (await ctx.generate(Request(prompt="second opinion"), model="small")).text
        return f"{checked} | {again} | {ctx.model} {ctx.models}"

    @g.node
    async def polish(verify: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt="polish"))).text + f" ({ctx.model})"

    g.chain(draft, verify, polish)
    g.output(verify)
    return g


async def test_each_request_lands_on_the_backend_its_node_names(pair):
    default = echo("D")
    result = await two_model_graph().run("q", backend=default, backends=pair)
    assert result.output == "L:verify S:draft q | S:second opinion | large ('small', 'large')"
    assert prompts(pair["small"]) == ["draft q", "second opinion"]
    assert prompts(pair["large"]) == ["verify S:draft q"]
    assert prompts(default) == ["polish"] and result["polish"] == "D:polish (None)"


async def test_tokens_records_and_events_carry_the_model_name(pair):
    result = await two_model_graph().run("q", backend=echo("D"), backends=pair)
    by_model = result.tokens_by_model
    assert set(by_model) == {"small", "large", "default"}
    assert [by_model[m].requests for m in ("small", "large", "default")] == [2, 1, 1]
    assert sum(u.total for u in by_model.values()) == result.tokens.total
    verify = result.nodes["verify"].tokens_by_model
    assert set(verify) == {"small", "large"} and verify["small"].requests == verify["large"].requests == 1
    assert verify["small"].total + verify["large"].total == result.nodes["verify"].tokens.total
    used = [(e.node, e.model_name) for e in result.events if isinstance(e, TokensUsed)]
    assert used == [("draft", "small"), ("verify", "large"), ("verify", "small"), ("polish", "default")]
    assert "tokens by model: small" in result.summary()


async def test_a_node_without_a_model_inside_a_subgraph_uses_its_subgraph_nodes_model(pair):
    inner = Graph("inner")

    @inner.node
    async def ask(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q))).text

    @inner.node(model="small")
    async def own(ask: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt="own"))).text

    inner.chain(ask, own)
    outer = Graph("outer")
    outer.add(inner, model="large")
    result = await outer.run("hi", backends=pair)
    assert result.output == "S:own"
    assert prompts(pair["large"]) == ["hi"] and prompts(pair["small"]) == ["own"]


async def test_strategy_nodes_take_model(pair):
    g = Graph("strategies")
    step = ChainStep("Q {q}", name="step", model="large")
    vote = FanOut(ChainStep("V {q}", name="sample"), k=2, model="small", winner_only=True)
    g.add(step)
    g.add(vote)
    result = await g.run("x", backends=pair)
    assert result["step"] == "L:Q x"
    assert result["vote_sample"] == "S:V x"
    assert prompts(pair["large"]) == ["Q x"] and prompts(pair["small"]) == ["V x"]
    assert pair["small"].requests[0].params.n == 2  # one n-request for the vote


async def test_a_fan_out_samples_with_its_steps_model_and_judges_with_the_judges():
    small = ScriptedBackend(lambda r: "7")
    large = ScriptedBackend(lambda r: "9")
    judge = LLMJudge("Rate {candidate}:", model="large")
    vote = FanOut(ChainStep("Q {q}", NumberParser(int), name="solve", model="small"), k=3,
                  aggregate=BestOfN(judge), winner_only=True)
    g = Graph("judged")
    g.add(vote)
    result = await g.run("x", backends={"small": small, "large": large})
    assert result.output == 7
    assert prompts(small) == ["Q x"] and prompts(large) == ["Rate 7:"] * 3
    assert set(result.tokens_by_model) == {"small", "large"}


async def test_plan_and_execute_plans_and_solves_with_their_own_models():
    @tool
    def double(value: float) -> float:
        """Twice a number."""
        return 2 * value

    plan = json.dumps({"steps": [{"id": "E1", "thought": "double it", "tool": "double", "args": {"value": 4}}]})
    planner, solver = ScriptedBackend([plan]), ScriptedBackend(["Answer: 8"])
    g = Graph("pe")
    g.add(PlanAndExecute(ToolRegistry([double]), planner_model="planner", solver_model="solver"))
    result = await g.run({"task": "double 4"}, backends={"planner": planner, "solver": solver})
    assert result.output.answer == "8"
    assert len(planner.requests) == len(solver.requests) == 1
    assert "Task: double 4" in planner.requests[0].prompt_text() and "#E1" in solver.requests[0].prompt_text()


async def test_formulate_takes_model():
    variables = [{"name": n, "domain": {"min": 1, "max": 2}} for n in ("a", "b")]
    csp = json.dumps({"variables": variables, "constraints": ["a < b"]})
    large = ScriptedBackend([csp])
    g = Graph("csp")
    g.add(Formulate(model="large"))
    result = await g.run({"problem": "a is less than b"}, backend=ScriptedBackend([]), backends={"large": large})
    assert result.output.solution == {"a": 1, "b": 2}
    assert len(large.requests) == 1


async def test_streaming_requests_go_to_the_named_backend(pair):
    g = Graph("stream")
    chunks: list[str] = []

    @g.node(model="large")
    async def speak(q: str, ctx: RunContext) -> str:
        return (await ctx.generate_stream(Request(prompt=q), chunks.append)).text

    assert (await g.run("hey", backends=pair)).output == "L:hey"
    assert "".join(chunks) == "L:hey" and not pair["small"].requests


async def test_an_unknown_name_is_refused_before_anything_runs(pair):
    ran: list[str] = []
    g = Graph("typo")

    @g.node
    def first(q: str) -> str:
        ran.append("first")
        return q

    g.chain(first, ChainStep("{first}", name="judge", model="lagre"))
    with pytest.raises(ConfigError) as info:
        await g.run("x", backends=pair)
    message = str(info.value)
    assert "node 'judge' asks for model 'lagre'" in message and "small, large" not in message
    assert "large, small" in message and "\n" not in message
    assert ran == [] and not pair["small"].requests and not pair["large"].requests


@pytest.mark.parametrize("where", ["subgraph", "judge", "planner"])
async def test_names_inside_composite_nodes_are_checked_too(pair, where):
    g = Graph("outer")
    if where == "subgraph":
        inner = Graph("inner")
        inner.add(ChainStep("{q}", name="deep", model="huge"))
        g.add(inner)
        culprit = "inner/deep"
    elif where == "judge":
        g.add(FanOut(ChainStep("{q}", name="s"), k=2, aggregate=BestOfN(LLMJudge("{candidate}", model="huge"))))
        culprit = "vote_s"
    else:
        g.add(PlanAndExecute(ToolRegistry([]), planner_model="huge"))
        culprit = "plan_and_execute"
    with pytest.raises(ConfigError, match=f"node '{culprit}' asks for model 'huge'"):
        await g.run({"q": "x"} if where != "planner" else {"task": "x"}, backends=pair)


async def test_a_name_asked_for_at_run_time_that_the_run_lacks_fails_the_node(pair):
    g = Graph("late")

    @g.node
    async def ask(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q), model="medium")).text

    with pytest.raises(NodeFailedError, match="node 'ask' asks for model 'medium', which this run lacks"):
        await g.run("x", backends=pair)


@pytest.mark.parametrize("backends, message", [
    ({}, "backends= is empty"),
    ({"": echo("x")}, "backend name '' is not an identifier"),
    ({"two words": echo("x")}, "backend name 'two words' is not an identifier"),
    ({"default": echo("x")}, "'default' names the run's backend="),
    ({"small": "qwen"}, r"backends\['small'\] is str, not a Backend"),
    ({"small": None}, r"backends\['small'\] is NoneType, not a Backend"),
    (["small"], "backends= takes a dict from name to Backend"),
])
async def test_bad_backends_are_one_line_errors(backends, message):
    g = Graph("g")
    g.add(lambda q: q, name="same")
    with pytest.raises(ConfigError, match=message) as info:
        await g.run("x", backends=backends)
    assert "\n" not in str(info.value)


async def test_one_backend_under_two_names_is_refused():
    g = Graph("g")
    g.add(lambda q: q, name="same")
    shared = echo("x")
    with pytest.raises(ConfigError, match=r"backends\['b'\] is the same backend as backends\['a'\]"):
        await g.run("x", backends={"a": shared, "b": shared})


@pytest.mark.parametrize("model", ["", "a-b", 3])
def test_a_node_model_must_be_a_name(model):
    with pytest.raises(GraphError, match="model= takes the name of one of the run's backends"):
        ChainStep("{q}", name="step", model=model)


async def test_one_budget_spans_every_model():
    small = FunctionBackend(lambda r: "x " * 50)
    large = FunctionBackend(lambda r: "y " * 50)
    g = Graph("budget")

    @g.node(model="small")
    async def a(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q, params=SamplingParams(max_tokens=60)))).text

    @g.node(model="large")
    async def b(a: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt="go", params=SamplingParams(max_tokens=60)))).text

    g.chain(a, b)
    with pytest.raises(BudgetExceededError) as info:
        await g.run("q", backends={"small": small, "large": large}, token_budget=100)
    assert len(small.requests) == 1 and not large.requests  # large's reservation did not fit what small spent
    assert set(info.value.partial.tokens_by_model) == {"small"}


async def test_run_sync_stream_and_batch_take_backends(pair):
    g = two_model_graph()
    expected = "L:verify S:draft q | S:second opinion | large ('small', 'large')"
    assert (await anyio.to_thread.run_sync(lambda: g.run_sync("q", backend=echo("D"), backends=pair))).output \
        == expected
    async with g.stream("q", backend=echo("D"), backends=pair) as run:
        kinds = [event.kind async for event in run]
    assert "tokens_used" in kinds and (await run.result()).output == expected
    from plait import run_batch

    batch = await run_batch(g, ["q", "r"], backend=echo("D"), backends=pair)
    assert [item.output.split(" | ")[0] for item in batch.items] == ["L:verify S:draft q", "L:verify S:draft r"]

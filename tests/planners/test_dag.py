"""Running plans as a DAG: overlap of independent steps, order of dependent ones, typed substitution."""

import anyio
import pytest
from pydantic import BaseModel

from plait import Graph, RunContext, ScriptedBackend, tool
from plait.executors import ToolFailure, ToolRegistry, ToolRunner
from plait.orchestrator import Custom
from plait.planners import execute_plan, Plan


def make_plan(*steps):
    return Plan.model_validate({"steps": [dict(zip(("id", "tool", "args"), s)) for s in steps]})


def run_plan(plan, tools, *, parallel=True, backend=None, evidence=None):
    """Run ``plan`` inside a one-node graph; return (evidence, step events by id, the RunResult)."""
    g = Graph("dag")
    reg = ToolRegistry.of(tools)

    @g.node
    async def execute(task: str, ctx: RunContext) -> dict:
        return await execute_plan(plan, ToolRunner(reg, emit=ctx.emit), ctx, evidence=evidence, parallel=parallel)

    result = anyio.run(lambda: g.run({"task": "t"}, backend=backend or ScriptedBackend([])))
    spans = {}
    for e in result.events:
        if isinstance(e, Custom) and e.name == "plan_step_started":
            spans[e.data["step"]] = [e.t, None]
        elif isinstance(e, Custom) and e.name == "plan_step_finished":
            spans[e.data["step"]][1] = e.t
    return result.output, spans, result


@pytest.fixture
def timed():
    @tool
    async def fetch(key: str) -> int:
        """Fetch a number (slow)."""
        await anyio.sleep(0.25)
        return len(key)

    @tool
    async def add(a: int, b: int) -> int:
        """Add two numbers (slow)."""
        await anyio.sleep(0.25)
        return a + b

    return [fetch, add]


DIAMOND = make_plan(("E1", "fetch", {"key": "a"}), ("E2", "fetch", {"key": "bb"}), ("E3", "fetch", {"key": "ccc"}),
                    ("E4", "add", {"a": "#E1", "b": "#E2"}), ("E5", "add", {"a": "#E4", "b": "#E3"}))


def test_independent_steps_overlap_and_dependent_steps_wait(timed):
    evidence, spans, result = run_plan(DIAMOND, timed)
    assert evidence == {"E1": 1, "E2": 2, "E3": 3, "E4": 3, "E5": 6}
    independent = ["E1", "E2", "E3"]
    # every independent step started before any of them finished: they ran at the same time
    assert max(spans[s][0] for s in independent) < min(spans[s][1] for s in independent)
    # a dependent step starts only after every step it references has finished
    assert spans["E4"][0] >= max(spans["E1"][1], spans["E2"][1])
    assert spans["E5"][0] >= max(spans["E4"][1], spans["E3"][1])
    # each step ran as a node of the graph runtime
    assert {f"execute/{s}" for s in DIAMOND.ids} <= set(result.nodes)
    assert result.nodes["execute/E5"].output == 6


def test_a_step_waits_only_for_the_steps_it_references(timed):
    @tool
    async def slow(key: str) -> int:
        """A slow independent call."""
        await anyio.sleep(1.0)
        return 0

    plan = make_plan(("E1", "fetch", {"key": "a"}), ("E2", "slow", {"key": "b"}), ("E3", "add", {"a": "#E1", "b": 1}))
    evidence, spans, _ = run_plan(plan, [*timed, slow])
    assert evidence == {"E1": 1, "E2": 0, "E3": 2}
    assert spans["E3"][1] < spans["E2"][1]  # E3 finished while the unrelated E2 was still running


def test_sequential_mode_runs_one_step_at_a_time_in_plan_order(timed):
    evidence, spans, _ = run_plan(DIAMOND, timed, parallel=False)
    assert evidence["E5"] == 6
    order = sorted(spans, key=lambda s: spans[s][0])
    assert order == DIAMOND.ids
    for a, b in zip(order, order[1:]):
        assert spans[b][0] >= spans[a][1]


class Quote(BaseModel):
    symbol: str
    price: float
    tags: list[str]


def test_references_are_substituted_as_typed_values_including_fields():
    seen = {}

    @tool
    def quote(symbol: str) -> Quote:
        """A quote."""
        return Quote(symbol=symbol, price=12.5, tags=["tech", "large"])

    @tool
    def info(symbol: str) -> dict:
        """A dict of facts."""
        return {"sector": "tech", "ratios": [1.5, 2.5]}

    @tool
    def inspect(whole: Quote, price: float, tag: str, ratio: float, both: list[float], text: str) -> str:
        """Record what arrived."""
        seen.update(whole=whole, price=price, tag=tag, ratio=ratio, both=both, text=text)
        return "ok"

    plan = make_plan(
        ("E1", "quote", {"symbol": "AAA"}), ("E2", "info", {"symbol": "AAA"}),
        ("E3", "inspect", {"whole": "#E1", "price": "#E1.price", "tag": "#E1.tags.1", "ratio": "#E2.ratios.-1",
                           "both": ["#E1.price", "#E2.ratios.0"], "text": "#E1.symbol costs #E1.price in #E2.sector"}),
    )
    evidence, _, _ = run_plan(plan, [quote, info, inspect])
    assert evidence["E3"] == "ok"
    assert seen["whole"] is evidence["E1"]  # the model object itself, not its text
    assert seen["price"] == 12.5 and type(seen["price"]) is float
    assert seen["tag"] == "large" and seen["ratio"] == 2.5 and seen["both"] == [12.5, 1.5]
    assert seen["text"] == "AAA costs 12.5 in tech"  # inside text, references are pasted


def test_tool_errors_become_evidence_and_dependents_are_not_run():
    @tool
    def lookup(name: str) -> dict:
        """Look up."""
        raise KeyError(f"no entry {name!r}")

    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    plan = make_plan(("E1", "lookup", {"name": "Atlantis"}), ("E2", "echo", {"text": "#E1.size"}),
                     ("E3", "echo", {"text": "fine"}))
    evidence, _, result = run_plan(plan, [lookup, echo])
    assert evidence["E1"] == ToolFailure("lookup", "KeyError: \"no entry 'Atlantis'\"", 1)
    assert isinstance(evidence["E2"], ToolFailure)
    assert evidence["E2"].error.startswith("not run: #E1.size cannot be used: step E1 failed (KeyError")
    assert evidence["E3"] == "fine"
    assert result.status == "ok"


def test_a_missing_field_at_run_time_is_a_failure_value():
    @tool
    def info(symbol: str) -> dict:
        """Facts."""
        return {"sector": "tech"}

    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    plan = make_plan(("E1", "info", {"symbol": "A"}), ("E2", "echo", {"text": "#E1.country"}))
    evidence, _, _ = run_plan(plan, [info, echo])
    assert evidence["E2"].error == ("not run: #E1.country: dict value {'sector': 'tech'} has no field 'country'")


def test_tool_timeout_inside_a_plan_is_evidence():
    @tool(timeout=0.05)
    async def hang(x: int) -> int:
        """Never returns in time."""
        await anyio.sleep(10)
        return x

    evidence, _, _ = run_plan(make_plan(("E1", "hang", {"x": 1})), [hang])
    assert evidence["E1"] == ToolFailure("hang", "TimeoutError: tool 'hang' timed out after 0.05s", 1)


def test_llm_steps_go_to_the_backend_with_references_resolved():
    @tool
    def capital(country: str) -> str:
        """Capital of a country."""
        return {"France": "Paris"}[country]

    backend = ScriptedBackend(["About 2.1 million people."])
    plan = make_plan(("E1", "capital", {"country": "France"}), ("E2", "llm", {"prompt": "How many live in #E1?"}))
    evidence, _, result = run_plan(plan, [capital], backend=backend)
    assert evidence["E2"] == "About 2.1 million people."
    assert backend.requests[0].prompt == "How many live in Paris?"
    assert result.tokens.requests == 1


def test_earlier_evidence_can_be_referenced(timed):
    plan = make_plan(("E3", "add", {"a": "#E1", "b": "#E2"}))
    evidence, spans, _ = run_plan(plan, timed, evidence={"E1": 4, "E2": 5})
    assert evidence == {"E1": 4, "E2": 5, "E3": 9}
    assert list(spans) == ["E3"]


def test_identical_steps_hit_the_per_run_cache():
    calls = []

    @tool(cache=True)
    async def lookup(country: str) -> int:
        """Population (cached per run)."""
        calls.append(country)
        await anyio.sleep(0.05)
        return 5

    plan = make_plan(("E1", "lookup", {"country": "France"}), ("E2", "lookup", {"country": "France"}),
                     ("E3", "lookup", {"country": "Spain"}))
    evidence, _, result = run_plan(plan, [lookup])
    assert evidence == {"E1": 5, "E2": 5, "E3": 5}
    assert sorted(calls) == ["France", "Spain"]
    hits = [e.data for e in result.events if isinstance(e, Custom) and e.name == "tool_cache_hit"]
    assert hits == [{"tool": "lookup", "args": {"country": "France"}}]

"""The ReAct baseline: thought / action / observation turns over the run's backend."""

import anyio

from plait import Graph, ReAct, ScriptedBackend
from plait.executors import ToolFailure
from plait.orchestrator import Custom
from plait.planners import ReActResult


def run(node, task, backend):
    g = Graph("agent")
    g.add(node)
    return anyio.run(lambda: g.run({"task": task}, backend=backend))


def test_react_calls_one_tool_per_turn_and_feeds_observations_back(registry):
    backend = ScriptedBackend([
        "Thought: I need the price of AAA.\nAction: quote[AAA]\nObservation: made up",
        'Thought: Now double it.\nAction: scale[{"value": 10.0}]',
        "Thought: I know the answer.\nFinal Answer: 20",
    ])
    result = run(ReAct(registry), "Double AAA's price", backend)
    out = result.output
    assert isinstance(out, ReActResult) and out.finished and out.answer == "20"
    assert [(s.tool, s.args) for s in out.steps] == [("quote", {"symbol": "AAA"}), ("scale", {"value": 10.0})]
    assert out.steps[0].observation.price == 10.0 and out.steps[0].thought == "I need the price of AAA."
    assert out.steps[1].observation == 20.0
    # every turn re-sends the whole transcript; invented observations are cut at the stop string
    second, third = backend.requests[1].prompt, backend.requests[2].prompt
    assert second.endswith('Action: quote[AAA]\nObservation: {"symbol":"AAA","price":10.0}\n')
    assert "made up" not in second
    assert third.startswith(second) and third.endswith("Observation: 20.0\n")
    assert backend.requests[0].params.stop == ("Observation:",)
    assert "- quote(symbol: str) -> Quote" in backend.requests[0].prompt and "llm(" not in backend.requests[0].prompt
    assert [e.data["tool"] for e in result.events if isinstance(e, Custom) and e.name == "react_step"] == [
        "quote", "scale"]


def test_react_reports_tool_errors_and_bad_format_as_observations(registry):
    backend = ScriptedBackend([
        "Thought: try.\nAction: quote[ZZZ]",
        "I am not sure what to do.",
        "Final Answer: unknown",
    ])
    out = run(ReAct(registry), "t", backend).output
    assert out.answer == "unknown" and isinstance(out.steps[0].observation, ToolFailure)
    assert "Observation: ERROR from quote: KeyError: 'ZZZ'" in backend.requests[1].prompt
    assert "Observation: Invalid format: write 'Action: <tool>[<input>]'" in backend.requests[2].prompt


def test_react_stops_at_its_step_limit(registry):
    backend = ScriptedBackend(["Thought: again.\nAction: quote[AAA]"] * 3)
    result = run(ReAct(registry, max_steps=3), "t", backend)
    assert result.output.finished is False and result.output.answer == ""
    assert len(result.output.steps) == 3 and len(backend.requests) == 3
    assert [e.data for e in result.events if isinstance(e, Custom) and e.name == "react_gave_up"] == [
        {"max_steps": 3}]

"""Streaming plans: steps start while the planner is still writing; a bad step stops launching."""

import json

import anyio

from plait import Backend, Graph, PlanAndExecute, ScriptedBackend
from plait.orchestrator import Custom, TokensUsed

PLAN = """Plan: price of AAA
#E1 = quote[AAA]
Plan: price of BBB
#E2 = quote[BBB]
Plan: add them
#E3 = total[{"values": ["#E1.price", "#E2.price"]}]
Plan: double the sum
#E4 = scale[{"value": "#E3"}]
"""


def run(node, backend, task="t"):
    g = Graph("stream")
    g.add(node)
    return anyio.run(lambda: g.run({"task": task}, backend=backend))


def custom(result, name):
    return [e for e in result.events if isinstance(e, Custom) and e.name == name]


def test_steps_start_before_the_planner_has_finished_writing(registry):
    backend = ScriptedBackend([PLAN, "Answer: 25"], token_latency=0.02)
    result = run(PlanAndExecute(registry, plan_format="text", stream=True), backend)
    assert result.output.answer == "25" and result.output.evidence["E4"] == 25.0
    planner_done = next(e.t for e in result.events if isinstance(e, TokensUsed))
    started = {e.data["step"]: e.t for e in custom(result, "plan_step_started")}
    assert started["E1"] < planner_done and started["E2"] < planner_done
    finished = {e.data["step"]: e.t for e in custom(result, "plan_step_finished")}
    assert started["E3"] >= max(finished["E1"], finished["E2"])  # references are still waited for
    assert [e.data["streamed"] for e in custom(result, "plan")] == [True]
    assert len(backend.requests) == 2 and result.tokens.requests == 2


def test_a_bad_step_stops_launching_and_the_rest_is_replanned_keeping_evidence(registry):
    bad = "Plan: price of AAA\n#E1 = quote[AAA]\nPlan: bad\n#E2 = wikipedia[AAA]\n#E3 = quote[BBB]\n"
    rest = "Plan: double it\n#E2 = scale[{\"value\": \"#E1.price\"}]\n"
    backend = ScriptedBackend([bad, rest, "Answer: 20"])
    result = run(PlanAndExecute(registry, plan_format="text", stream=True), backend)
    out = result.output
    assert out.answer == "20" and out.evidence["E1"].price == 10.0 and out.evidence["E2"] == 20.0
    assert [s.id for p in out.plans for s in p.steps] == ["E1", "E2"]  # E3 after the bad step never ran
    again = backend.requests[1].prompt
    assert "the rest of the plan could not run: step E2: unknown tool 'wikipedia'" in again
    assert '#E1 = quote[AAA] -> {"symbol":"AAA","price":10.0}' in again
    assert [e.data["step"] for e in custom(result, "plan_step_finished")] == ["E1", "E2"]


def test_a_bad_first_step_is_repaired_like_a_whole_plan(registry):
    backend = ScriptedBackend(["#E1 = quote[AAA] and more", "I cannot plan", PLAN, "Answer: 25"])
    result = run(PlanAndExecute(registry, plan_format="text", stream=True, max_repairs=2), backend)
    assert result.output.evidence["E4"] == 25.0
    assert "That plan cannot run:\n- no plan steps found" in backend.requests[1].prompt
    assert [e.data["valid"] for e in custom(result, "plan")] == [False, False, True]


class NoStreaming(ScriptedBackend):
    supports_streaming = False
    stream = Backend.stream  # the whole text at the end


def test_a_backend_that_cannot_stream_still_runs_the_plan(registry):
    result = run(PlanAndExecute(registry, plan_format="text", stream=True), NoStreaming([PLAN, "Answer: 25"]))
    assert result.output.evidence["E4"] == 25.0


JSON_PLAN = json.dumps({"steps": [
    {"id": "E1", "thought": "price of AAA", "tool": "quote", "args": {"symbol": "AAA"}},
    {"id": "E2", "thought": "price of BBB", "tool": "quote", "args": {"symbol": "BBB"}},
    {"id": "E3", "thought": "add them", "tool": "total", "args": {"values": ["#E1.price", "#E2.price"]}},
    {"id": "E4", "thought": "double the sum", "tool": "scale", "args": {"value": "#E3"}},
]})


def test_json_plans_stream_step_by_step(registry):
    backend = ScriptedBackend([JSON_PLAN, "Answer: 25"], token_latency=0.005)
    result = run(PlanAndExecute(registry, stream=True), backend)
    assert result.output.evidence["E4"] == 25.0
    planner_done = next(e.t for e in result.events if isinstance(e, TokensUsed))
    started = {e.data["step"]: e.t for e in custom(result, "plan_step_started")}
    assert started["E1"] < planner_done and started["E2"] < planner_done
    assert backend.requests[0].params.constraint is not None  # still structured output


def test_unnumbered_json_steps_stream_with_positional_ids(registry):
    steps = [{k: v for k, v in s.items() if k != "id"} for s in json.loads(JSON_PLAN)["steps"]]
    backend = ScriptedBackend([json.dumps({"steps": steps}), "Answer: 25"], token_latency=0.002)
    result = run(PlanAndExecute(registry, stream=True), backend)
    evidence = result.output.evidence
    assert list(evidence) == ["E1", "E2", "E3", "E4"] and evidence["E2"].price == 2.5 and evidence["E4"] == 25.0


def test_a_bad_json_step_stops_launching(registry):
    bad = json.dumps({"steps": [{"id": "E1", "thought": "", "tool": "quote", "args": {"symbol": "AAA"}},
                                {"id": "E2", "thought": "", "tool": "scale", "args": {"value": "lots"}},
                                {"id": "E3", "thought": "", "tool": "quote", "args": {"symbol": "BBB"}}]})
    rest = json.dumps({"steps": [{"id": "E2", "thought": "", "tool": "scale", "args": {"value": "#E1.price"}}]})
    backend = ScriptedBackend([bad, rest, "Answer: 20"])
    result = run(PlanAndExecute(registry, stream=True), backend)
    assert result.output.evidence["E2"] == 20.0 and "E3" not in result.output.evidence
    assert "argument 'value' of scale must be float" in backend.requests[1].prompt


def test_json_step_scanner_finds_each_step_object_once_complete():
    from plait.planners._streaming import _JsonStepScanner

    text = ('[{"id": "E1", "tool": "t", "args": {"q": "a \\"}{[ quoted", "xs": [{"k": 1}]}},\n'
            ' {"id": "E2", "tool": "t", "args": {}}]')
    scanner = _JsonStepScanner()
    found = []
    for i, ch in enumerate(text):
        for obj in scanner.feed(ch):
            found.append((i, json.loads(obj)["id"]))
    assert [sid for _, sid in found] == ["E1", "E2"]
    assert found[0][0] == text.index("},\n")  # E1 was complete at its closing brace
    wrapped = _JsonStepScanner()
    assert [json.loads(o)["id"] for o in wrapped.feed('{"steps": [{"id": "E1", "args": {"v": [1, 2]}}]}')] == ["E1"]

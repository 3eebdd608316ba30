"""Streaming plans: steps start while the planner is still writing; a bad step stops launching."""

import anyio
import pytest

from plait import Backend, Custom, Graph, PlanAndExecute, ScriptedBackend, TokensUsed

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


def test_streaming_needs_the_text_format(registry):
    with pytest.raises(ValueError, match="stream=True needs plan_format='text'"):
        PlanAndExecute(registry, stream=True)

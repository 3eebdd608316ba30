"""The planner's repair loop, the PlanAndExecute node end to end, replanning, events."""

import json

import anyio
import pytest

from plait import Graph, JsonSchema, NodeFailedError, PlanAndExecute, ScriptedBackend
from plait.errors import PlanError
from plait.executors import ToolFailure
from plait.orchestrator import Custom
from plait.planners import plan_and_execute_graph, plan_json_schema, PlanResult


def plan_json(*steps):
    return json.dumps({"steps": [{"id": i, "thought": f"step {i}", "tool": t, "args": a} for i, t, a in steps]})


GOOD = plan_json(("E1", "quote", {"symbol": "AAA"}), ("E2", "quote", {"symbol": "BBB"}),
                 ("E3", "total", {"values": ["#E1.price", "#E2.price"]}))


def run(graph_or_node, task, backend):
    graph = graph_or_node if isinstance(graph_or_node, Graph) else _graph(graph_or_node)
    return anyio.run(lambda: graph.run({"task": task}, backend=backend))


def _graph(node):
    g = Graph("pe")
    g.add(node)
    return g


def custom(result, name):
    return [e.data for e in result.events if isinstance(e, Custom) and e.name == name]


def test_plan_execute_solve_with_two_model_calls(registry):
    backend = ScriptedBackend([GOOD, "Answer: 12.5"])
    result = run(PlanAndExecute(registry), "What do AAA and BBB cost together?", backend)
    out = result.output
    assert isinstance(out, PlanResult)
    assert out.answer == "12.5" and out.replans == 0
    assert out.evidence["E3"] == 12.5 and out.evidence["E1"].price == 10.0
    assert len(backend.requests) == 2 and result.tokens.requests == 2
    planner_request, solver_request = backend.requests
    # the planner asked with structured output: the plan schema generated from the tools
    assert planner_request.params.constraint == JsonSchema(schema=plan_json_schema(registry))
    assert "Task: What do AAA and BBB cost together?" in planner_request.prompt
    assert "- quote(symbol: str) -> Quote: Latest quote of a stock symbol." in planner_request.prompt
    # the solver saw the task and every piece of evidence, not the tool descriptions
    solver = solver_request.prompt
    assert '#E1 = quote[AAA] -> {"symbol":"AAA","price":10.0}' in solver
    assert '#E3 = total[{"values": ["#E1.price", "#E2.price"]}] -> 12.5' in solver
    assert "Latest quote" not in solver and 'reply "Replan:' in solver
    # plan, steps and answer were recorded as events
    assert custom(result, "plan")[0]["valid"] is True
    assert [d["step"] for d in custom(result, "plan_step_finished")][-1] == "E3"
    assert custom(result, "answer") == [{"answer": "12.5", "replans": 0}]


def test_text_format_planner_asks_without_a_constraint(registry):
    text = "Plan: price of AAA\n#E1 = quote[AAA]\nPlan: double it\n#E2 = scale[{\"value\": \"#E1.price\"}]"
    backend = ScriptedBackend([text, "The answer is 20. Answer: 20"])
    result = run(PlanAndExecute(registry, plan_format="text"), "Double the price of AAA", backend)
    assert result.output.evidence["E2"] == 20.0 and result.output.answer == "20"
    assert backend.requests[0].params.constraint is None
    assert "#E1 = <tool>[" in backend.requests[0].prompt


def test_invalid_plan_is_repaired_with_the_validation_errors(registry):
    bad = plan_json(("E1", "quotes", {"symbol": "AAA"}), ("E2", "scale", {"value": "#E3"}))
    backend = ScriptedBackend([bad, GOOD, "Answer: 12.5"])
    result = run(PlanAndExecute(registry), "t", backend)
    assert result.output.answer == "12.5"
    repair = backend.requests[1].prompt
    assert bad in repair
    assert "That plan cannot run:\n- step E1: unknown tool 'quotes'" in repair
    assert "- step E2: refers to #E3, which no step defines" in repair
    assert [e["valid"] for e in custom(result, "plan")] == [False, True]


def test_unparsable_plan_is_repaired_too(registry):
    backend = ScriptedBackend(["I will look up both prices.", GOOD, "Answer: 12.5"])
    result = run(PlanAndExecute(registry), "t", backend)
    assert result.output.answer == "12.5"
    assert "no JSON object found in the planner output" in backend.requests[1].prompt


def test_planner_gives_up_after_its_repair_rounds_with_the_last_plan(registry):
    bad = plan_json(("E1", "scale", {"value": "cheap"}))
    backend = ScriptedBackend([bad, bad])
    with pytest.raises(NodeFailedError) as err:
        run(PlanAndExecute(registry, max_repairs=1), "t", backend)
    cause = err.value.cause
    assert isinstance(cause, PlanError)
    assert cause.plan.steps[0].args == {"value": "cheap"} and cause.raw == bad
    assert cause.problems == ["step E1: argument 'value' of scale must be float: Input should be a valid number, "
                              "unable to parse string as a number (got 'cheap')"]
    assert "no valid plan in 2 attempt(s)" in str(cause)
    assert len(backend.requests) == 2


def test_replanning_sees_and_reuses_the_evidence_already_gathered(registry):
    first = plan_json(("E1", "quote", {"symbol": "AAA"}))
    second = plan_json(("E2", "scale", {"value": "#E1.price", "factor": 3}))
    backend = ScriptedBackend([first, "Replan: I still need the price tripled.", second, "Answer: 30"])
    result = run(PlanAndExecute(registry, max_replans=1), "Triple AAA", backend)
    out = result.output
    assert out.answer == "30" and out.replans == 1 and len(out.plans) == 2
    assert out.evidence["E1"].price == 10.0 and out.evidence["E2"] == 30.0
    replan_prompt = backend.requests[2].prompt
    assert '#E1 = quote[AAA] -> {"symbol":"AAA","price":10.0}' in replan_prompt
    assert "Why a new plan is needed: I still need the price tripled." in replan_prompt
    assert "Number new steps from E2." in replan_prompt
    # E1 ran once: the second round used its result instead of fetching it again
    assert [d["step"] for d in custom(result, "plan_step_finished")] == ["E1", "E2"]
    assert custom(result, "replan") == [{"round": 1, "reason": "I still need the price tripled."}]
    assert 'reply "Replan:' not in backend.requests[3].prompt  # the last round may not replan


def test_replanning_is_bounded(registry):
    backend = ScriptedBackend([GOOD, "Replan: need more"])
    result = run(PlanAndExecute(registry, max_replans=0), "t", backend)
    assert result.output.answer == "Replan: need more" and result.output.replans == 0
    assert len(backend.requests) == 2


def test_tool_errors_reach_the_solver_as_evidence(registry):
    plan = plan_json(("E1", "quote", {"symbol": "ZZZ"}), ("E2", "quote", {"symbol": "AAA"}))
    backend = ScriptedBackend([plan, "Answer: only AAA is known"])
    result = run(PlanAndExecute(registry), "t", backend)
    assert isinstance(result.output.evidence["E1"], ToolFailure)
    assert "#E1 = quote[ZZZ] -> ERROR from quote: KeyError: 'ZZZ'" in backend.requests[1].prompt
    assert result.output.evidence["E2"].price == 10.0


def test_graph_helper_and_sequential_mode(registry):
    g = plan_and_execute_graph(registry, name="stocks", parallel=False)
    assert set(g.input_params) == {"task"} and g.output_type is PlanResult
    result = run(g, "t", ScriptedBackend([GOOD, "Answer: 12.5"]))
    assert result.output.evidence["E3"] == 12.5
    starts = [d["step"] for d in custom(result, "plan_step_started")]
    assert starts == ["E1", "E2", "E3"]


def test_custom_input_name_and_llm_steps(registry):
    plan = plan_json(("E1", "quote", {"symbol": "AAA"}), ("E2", "llm", {"prompt": "Is #E1.price cheap?"}))
    backend = ScriptedBackend([plan, "Yes, fairly.", "Answer: yes"])
    g = Graph("q")
    g.add(PlanAndExecute(registry, input="question"))
    result = anyio.run(lambda: g.run({"question": "Is AAA cheap?"}, backend=backend))
    assert result.output.evidence["E2"] == "Yes, fairly."
    assert backend.requests[1].prompt == "Is 10.0 cheap?"
    assert result.tokens.requests == 3

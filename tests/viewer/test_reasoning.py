"""The reasoning panels, rendered from traces of the examples run on their scripted backends."""

import json

from reasoning_traces import Markup, example_trace, failed_plan_trace, load_example, run_traced

from plait import Graph, PlanAndExecute, ScriptedBackend
from plait.viewer._reasoning import reasoning_panels


def test_vote_panel_shows_bars_winner_and_where_early_stop_settled_it(tmp_path):
    events = example_trace("self_consistency", tmp_path)
    page = Markup(reasoning_panels(events))
    bars = page.having("plait-vote-bar")
    assert [(b["data-answer"], b["data-weight"]) for b in bars] == [("55", "3"), ("45", "1")]
    assert [b["data-answer"] for b in page.having("plait-winner") if "plait-vote-bar" in b["class"]] == ["55"]
    assert page.text_of("plait-vote-winner") == ["55"]
    [card] = page.text_of("plait-vote")
    assert "agreement 75%" in card and "4 / 8 samples" in card and "0 failed (0 truncated)" in card
    assert "early stop settled it after 4 of 8 samples (waves of 4)" in card and "EarlyStop" in card
    samples = page.having("plait-sample")
    assert [s["class"].split()[1] for s in samples] == ["plait-winner"] * 2 + ["plait-other", "plait-winner"] \
        + ["plait-undrawn"] * 4
    [settled] = page.having("plait-settled")
    assert settled["x1"] == str(4 * 14 - 1)  # the stop line sits after the 4th sample


def test_tree_panel_shows_each_task_with_conclusion_tokens_and_peak_context(tmp_path):
    events = example_trace("subtask_tree", tmp_path)
    page = Markup(reasoning_panels(events))
    tasks = page.having("plait-task")
    assert [t["data-path"] for t in tasks] == ["root", "1", "2"]
    assert page.text_of("plait-question") == ["How many legs do 3 spiders and 2 ants have?",
                                              "How many legs do 3 spiders have?", "How many legs do 2 ants have?"]
    conclusions = page.text_of("plait-conclusion")
    assert conclusions[1:] == ["\u2192 24", "\u2192 12"] and "36 legs" in conclusions[0]
    [tree] = [e["tree"] for e in events if e["kind"] == "subtask_tree_solved"]
    texts = page.text_of("plait-task")  # closed innermost first: 1, 2, then root
    for text, task in zip(texts, [*tree["subtasks"], tree]):
        assert f"done, {task['calls']} call(s), {task['tokens']} tokens" in text
    assert tree["calls"] == 2 and tree["tokens"] > tree["subtasks"][0]["tokens"] > 0
    pruned = page.text_of("plait-pruned")
    assert sum("pruned from the parent's context" in p for p in pruned) == 2  # the two subtasks' thoughts
    assert any("A spider has 8 legs" in p for p in pruned)
    [stats] = [e["stats"] for e in events if e["kind"] == "subtask_tree_solved"]
    peak, unpruned = stats["peak_context_tokens"], stats["unpruned_peak_context_tokens"]
    assert 0 < peak < unpruned
    assert page.text_of("plait-peak") == [f"peak context: {peak} tokens with pruning, {unpruned} without "
                                          f"({1 - peak / unpruned:.0%} less)"]
    assert page.having("plait-peak-pruned")[0]["width"] < page.having("plait-peak-unpruned")[0]["width"]


def test_plan_panel_draws_the_dag_with_arguments_references_and_evidence(tmp_path):
    events = example_trace("plan_execute_countries", tmp_path)
    page = Markup(reasoning_panels(events))
    steps = page.having("plait-plan-step")
    assert [s["data-step"] for s in steps] == ["E1", "E2", "E3", "E4", "E5", "E6"]
    assert all("plait-step-ok" in s["class"] for s in steps)
    assert len(page.having("plait-plan-edge")) == 4  # E1->E3, E2->E4, E3->E5, E4->E6
    rows = {attrs["data-step"]: text for tag, attrs, text in page.texts if tag == "tr" and "data-step" in attrs}
    assert rows["E3"].startswith("E3lookup") and '{"country": "#E1.0"}' in rows["E3"] and "#E1.0" in rows["E3"]
    assert "capital='Canberra'" in rows["E3"]
    assert "#E3.population, #E3.area_km2" in rows["E5"] and "3.458128" in rows["E5"]
    assert "answer: Canada" in page.text_of("plait-plan-answer")[0]


def test_plan_panel_marks_failed_tool_calls_and_shows_the_replan(tmp_path):
    events = failed_plan_trace(tmp_path)
    page = Markup(reasoning_panels(events))
    plans = page.having("plait-plan")
    assert [p["data-round"] for p in plans] == ["1", "2"]
    status = {s["data-step"]: s["class"].split()[1] for s in page.having("plait-plan-step")}
    assert status == {"E1": "plait-step-ok", "E2": "plait-step-failed", "E3": "plait-step-failed",
                      "E4": "plait-step-ok"}
    rows = {attrs["data-step"]: text for tag, attrs, text in page.texts if tag == "tr" and "data-step" in attrs}
    assert "failed: ERROR from lookup: KeyError" in rows["E2"] and "Atlantis" in rows["E2"]
    assert "failed: ERROR from calculator: not run" in rows["E3"]  # its reference points at the failed E2
    assert page.text_of("plait-replan") == ["the solver asked for a new plan: Atlantis is not a country."]
    assert "plan 1 of 2: 3 step(s)" in page.text and "plan 2 of 2 (replan 1): 1 step(s)" in page.text


def test_solver_panel_lists_rounds_final_model_solutions_and_retractions(tmp_path):
    events = example_trace("meetings", tmp_path)
    page = Markup(reasoning_panels(events))
    [rounds] = page.text_of("plait-rounds")
    assert rounds.startswith("round 1: solved accepted")
    [model] = page.text_of("plait-final-model")
    assert "4 variable(s)" in model and "Planning in 9..16" in model and "Design != Retro" in model
    assert "compare: left=Hiring, op=>=, right=13" in model
    [retraction] = page.text_of("plait-retraction")
    assert retraction.startswith("1Design=11, Retro=11violated constraint(s)")
    assert "constraint #3 (expression): Design != Retro" in retraction
    [settled] = page.text_of("plait-settled")
    assert settled.startswith("after 2 round(s): sat; kept from the model: Planning=10, Hiring=14, Design=12")
    assert settled.endswith("filled in by the solver: none")
    heads = [text for tag, attrs, text in page.texts if tag == "th"]
    assert {"Planning", "Design", "Hiring", "Retro"} <= set(heads)


def test_a_run_without_reasoning_nodes_has_no_panels(tmp_path):
    events = example_trace("self_consistency", tmp_path)
    plain = [e for e in events if e["kind"] != "vote_tallied"]
    assert reasoning_panels(plain) == "" and reasoning_panels([]) == ""


def test_a_streamed_plan_gets_the_results_of_steps_that_ran_before_the_plan_was_complete(tmp_path):
    module = load_example("plan_execute_countries")
    graph = Graph("streamed")
    graph.add(PlanAndExecute(module.TOOLS, stream=True))
    events = run_traced(graph, {"task": module.DEMO_TASK}, module.make_backend(), tmp_path / "streamed.jsonl")
    [plan] = [e for e in events if e.get("name") == "plan"]
    assert plan["data"]["streamed"]
    # a slow stream ends after its first steps finished: the plan event then follows their results
    late = [e for e in events if e is not plan]
    late.insert(max(i for i, e in enumerate(late) if e.get("name") == "plan_step_finished") + 1, plan)
    for trace in (events, late):
        page = Markup(reasoning_panels(trace))
        steps = page.having("plait-plan-step")
        assert [s["data-step"] for s in steps] == ["E1", "E2", "E3", "E4", "E5", "E6"]
        assert all("plait-step-ok" in s["class"] for s in steps)
        assert "3.458128" in page.text_of("plait-plan-steps")[0]


def test_rejected_planner_attempts_are_listed_with_their_problems(tmp_path):
    module = load_example("plan_execute_countries")
    bad = json.dumps({"steps": [{"tool": "teleport", "args": {}}]})
    graph = Graph("rejected")
    graph.add(PlanAndExecute(module.TOOLS, max_repairs=1))
    events = run_traced(graph, {"task": "t"}, ScriptedBackend([bad, bad]), tmp_path / "rejected.jsonl", fails=True)
    page = Markup(reasoning_panels(events))
    rejected = page.text_of("plait-plan-rejected")
    assert len(rejected) == 2 and all("teleport" in r for r in rejected)
    assert rejected[0].startswith("attempt 0 rejected") and "plan 1 of 1: 0 step(s)" in page.text
    assert not page.having("plait-plan-step")

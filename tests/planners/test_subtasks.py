"""SubtaskTree: decomposition, pruning, prefix layout, parallel siblings, limits and budgets."""

import json
import time

import anyio
import pytest

from plait import FunctionBackend, Graph, JsonSchema, NodeFailedError, ParseError, ScriptedBackend
from plait.errors import SubtaskBudgetError
from plait.executors import count_tokens
from plait.planners import SubtaskTree, TreeResult, tree_call_key, tree_script


def answer(text, thought=""):
    return json.dumps({"thought": thought, "answer": text})


def split(*tasks, thought="split it", needs=None):
    needs = needs or {}
    return json.dumps({"thought": thought, "subtasks": [
        {"task": t, **({"needs": needs[i]} if i in needs else {})} for i, t in enumerate(tasks, start=1)]})


def solve(tree, task, backend, **kw):
    g = Graph("g")
    g.add(tree)
    return anyio.run(lambda: g.run({"task": task}, backend=backend, **kw))


TWO_PARTS = {
    "root": split("capital of France?", "capital of Italy?", thought="two questions"),
    "1": answer("Paris", thought="SECRET-THOUGHT-ONE"),
    "2": answer("Rome", thought="SECRET-THOUGHT-TWO"),
    "root:conclude": answer("Paris and Rome", thought="combine"),
}


def test_direct_answer_is_one_call_with_the_reply_schema():
    backend = ScriptedBackend(tree_script({"root": answer("4")}))
    result = solve(SubtaskTree(), "2+2?", backend).output
    assert isinstance(result, TreeResult) and result.answer == "4"
    assert result.stats.calls == 1 and result.root.subtasks == []
    constraint = backend.requests[0].params.constraint
    assert isinstance(constraint, JsonSchema) and len(constraint.schema_["anyOf"]) == 2


def test_parent_context_keeps_conclusions_and_prunes_thoughts():
    backend = ScriptedBackend(tree_script(TWO_PARTS))
    run = solve(SubtaskTree(), "Capitals of France and Italy?", backend)
    result = run.output
    assert result.answer == "Paris and Rome"
    conclude = next(r for r in backend.requests if tree_call_key(r.prompt) == "root:conclude").prompt
    assert "Result 1: Paris\n" in conclude and "Result 2: Rome\n" in conclude
    assert "SECRET-THOUGHT" not in conclude
    assert [t.conclusion for t in result.root.subtasks] == ["Paris", "Rome"]
    assert result.root.subtasks[0].thoughts == ["SECRET-THOUGHT-ONE"]  # kept in the record, not the context
    # the conclude call answers only: its constraint forbids further subtasks
    assert "anyOf" not in backend.requests[-1].params.constraint.schema_


def test_prompts_share_a_byte_identical_prefix_and_hit_the_cache():
    backend = ScriptedBackend(tree_script(TWO_PARTS))
    stats = solve(SubtaskTree(), "Capitals?", backend).output.stats
    prompts = {tree_call_key(r.prompt): r.prompt for r in backend.requests}
    after_plan = prompts["root"] + TWO_PARTS["root"] + "\n"
    assert prompts["1"].startswith(after_plan) and prompts["2"].startswith(after_plan)
    assert prompts["root:conclude"].startswith(after_plan)
    assert stats.cached_tokens > 0 and 0 < stats.cache_hit_rate < 1
    assert stats.prompt_tokens == sum(count_tokens(r.prompt) for r in backend.requests)


def test_unpruned_figures_count_the_pruned_work_exactly():
    script = {"root": split("part"), "1": answer("A", thought="long " * 50),
              "root:conclude": answer("done")}
    backend = ScriptedBackend(tree_script(script))
    stats = solve(SubtaskTree(), "T", backend).output.stats
    child_prompt, conclude_prompt = backend.requests[1].prompt, backend.requests[2].prompt
    child_work = "Subtask 1: part\nReply: " + script["1"] + "\n"
    hidden = count_tokens(child_work)
    pruned_peak = max(count_tokens(r.prompt) + count_tokens(script[tree_call_key(r.prompt)])
                      for r in backend.requests)
    assert stats.peak_context_tokens == pruned_peak
    assert stats.unpruned_peak_context_tokens == count_tokens(conclude_prompt) + count_tokens(
        script["root:conclude"]) + hidden
    assert stats.unpruned_prompt_tokens == stats.context_prompt_tokens + hidden
    assert count_tokens(child_prompt) < stats.unpruned_peak_context_tokens
    assert stats.unpruned_peak_context_tokens > stats.peak_context_tokens and stats.peak_reduction > 0


def test_grandchild_work_is_pruned_at_every_level():
    script = {"root": split("a"), "1": split("a1", "a2"), "1.1": answer("x", thought="DEEP-1"),
              "1.2": answer("y", thought="DEEP-2"), "1:conclude": answer("x+y", thought="MID"),
              "root:conclude": answer("final")}
    backend = ScriptedBackend(tree_script(script))
    result = solve(SubtaskTree(max_depth=2), "T", backend).output
    root_conclude = backend.requests[-1].prompt
    assert tree_call_key(root_conclude) == "root:conclude"
    assert "Result 1: x+y" in root_conclude and "DEEP" not in root_conclude and "MID" not in root_conclude
    assert "Result 1.1: x\nResult 1.2: y\n" in next(r.prompt for r in backend.requests
                                                     if tree_call_key(r.prompt) == "1:conclude")
    assert [t.path for t in result.root.walk()] == ["", "1", "1.1", "1.2"]
    assert result.stats.tasks == 4 and result.stats.max_depth_reached == 2


def test_independent_siblings_run_in_parallel():
    spans = {}

    async def reply(request):
        key = tree_call_key(request.prompt_text())
        start = time.perf_counter()
        await anyio.sleep(0.3 if key in ("1", "2", "3") else 0)
        spans[key] = (start, time.perf_counter())
        return {"root": split("a", "b", "c"), "root:conclude": answer("abc")}.get(key) or answer(key)

    solve(SubtaskTree(), "T", FunctionBackend(reply))
    starts = [spans[k][0] for k in "123"]
    ends = [spans[k][1] for k in "123"]
    assert max(starts) < min(ends)  # all three were in flight at once


def test_a_subtask_that_needs_an_earlier_one_waits_and_sees_its_conclusion():
    order = []

    async def reply(request):
        key = tree_call_key(request.prompt_text())
        if key == "1":
            await anyio.sleep(0.2)
        order.append(key)
        return {"root": split("find x", "double x", "unrelated", needs={2: [1]}),
                "root:conclude": answer("done"), "1": answer("x=3")}.get(key) or answer(f"ok {key}")

    backend = FunctionBackend(reply)
    solve(SubtaskTree(), "T", backend)
    assert order.index("3") < order.index("1") < order.index("2")
    second = next(r.prompt for r in backend.requests if tree_call_key(r.prompt) == "2")
    assert "Result 1: x=3\nSubtask 2: double x\n" in second


def test_depth_limit_forces_a_direct_answer_and_reasks_violations():
    script = {"root": split("a"), "1": [split("a1"), answer("A")], "root:conclude": answer("done")}
    backend = ScriptedBackend(tree_script(script))
    result = solve(SubtaskTree(max_depth=1), "T", backend).output
    child_calls = [r for r in backend.requests if tree_call_key(r.prompt) == "1"]
    assert len(child_calls) == 2 and "maximum depth (1)" in child_calls[1].prompt
    assert "anyOf" not in child_calls[0].params.constraint.schema_  # at max depth only answers are allowed
    assert result.answer == "done" and result.root.subtasks[0].conclusion == "A"


def test_depth_limit_violated_beyond_reasks_fails_with_the_raw_reply():
    script = {"root": split("a"), "1": [split("a1"), split("a1")]}
    with pytest.raises(NodeFailedError) as info:
        solve(SubtaskTree(max_depth=1, max_reasks=1), "T", ScriptedBackend(tree_script(script)))
    assert isinstance(info.value.cause, ParseError) and "subtask '1'" in str(info.value.cause)
    assert "a1" in info.value.cause.raw


def test_breadth_limit_is_enforced():
    script = {"root": [split("a", "b", "c"), split("a", "b")], "1": answer("A"), "2": answer("B"),
              "root:conclude": answer("AB")}
    backend = ScriptedBackend(tree_script(script))
    result = solve(SubtaskTree(max_breadth=2), "T", backend).output
    assert "at most 2 subtasks" in backend.requests[1].prompt and len(result.root.subtasks) == 2
    assert backend.requests[0].params.constraint.schema_["anyOf"][1]["properties"]["subtasks"]["maxItems"] == 2
    with pytest.raises(ValueError, match="max_breadth"):
        SubtaskTree(max_breadth=0)


SHORT_SYSTEM = "Reply with JSON: an answer or up to {max_breadth} subtasks.\n" + "Be brief. " * 40 + "\n"
DEEP = {"root": split("heavy", "light"), "1": split("h1", "h2"), "1.1": answer("h1 " * 40),
        "1.2": answer("h2"), "1:conclude": answer("H"), "2": answer("L"), "root:conclude": answer("HL")}


def test_budget_exceeded_inside_a_subtree_raises_with_the_partial_record():
    with pytest.raises(NodeFailedError) as info:
        solve(SubtaskTree(subtree_budget=300, system=SHORT_SYSTEM), "T", ScriptedBackend(tree_script(DEEP)))
    error = info.value.cause
    assert isinstance(error, SubtaskBudgetError) and error.budget == 300 and error.used >= 300
    assert error.partial.path.startswith("1")


def test_budget_exceeded_inside_a_subtree_can_conclude_as_unfinished():
    backend = ScriptedBackend(tree_script(DEEP))
    result = solve(SubtaskTree(subtree_budget=300, on_budget="conclude", system=SHORT_SYSTEM), "T", backend).output
    heavy, light = result.root.subtasks
    # 'heavy' split (about 210 tokens), its first part ran with max_tokens capped to what was left (90) and
    # overspent; the second part was never started; the parent went on with an 'unfinished' conclusion.
    assert [(t.path, t.status) for t in heavy.walk()] == [
        ("1", "budget_exhausted"), ("1.1", "done"), ("1.2", "abandoned")]
    calls = {tree_call_key(r.prompt): r for r in backend.requests}
    spent = {k: count_tokens(r.prompt) + min(count_tokens(DEEP[k]), r.params.max_tokens) for k, r in calls.items()}
    assert calls["1.1"].params.max_tokens == 300 - spent["1"]
    assert heavy.tokens == spent["1"] + spent["1.1"] and "1.2" not in calls
    assert result.root.tokens == result.stats.prompt_tokens + result.stats.completion_tokens == sum(spent.values())
    assert light.conclusion == "L" and result.answer == "HL"
    conclude = backend.requests[-1].prompt
    assert "Result 1: [unfinished: the subtask's 300-token budget ran out]\nResult 2: L\n" in conclude


def test_answer_only_output_composes_in_a_graph():
    tree = SubtaskTree(answer_only=True, name="tree")
    assert tree.output_type is str
    g = Graph("g")
    g.add(tree)

    @g.node
    def shout(tree: str) -> str:
        return tree.upper()

    g.edge(tree, shout)
    result = anyio.run(lambda: g.run({"task": "T"}, backend=ScriptedBackend(tree_script(TWO_PARTS))))
    assert result.output == "PARIS AND ROME"
    events = [e.data["path"] for e in result.events if getattr(e, "name", None) == "subtask"]
    assert sorted(events) == ["1", "2", "root"]
    assert result.nodes["tree"].tokens.requests == 4


def test_unparsable_reply_is_reasked_then_used():
    backend = ScriptedBackend(tree_script({"root": ["I think 4", answer("4")]}))
    assert solve(SubtaskTree(), "2+2", backend).output.answer == "4"
    assert "no JSON object" in backend.requests[1].prompt and backend.requests[1].prompt.endswith("Reply: ")


def test_unpruned_baseline_run_measures_what_the_pruned_run_computed():
    script = {"root": split("a", "b"), "1": split("a1", "a2", thought="think " * 30),
              "1.1": answer("x", thought="deep " * 30), "1.2": answer("y", thought="deeper " * 30),
              "1:conclude": answer("x+y", thought="sum " * 20), "2": answer("z", thought="other " * 30),
              "root:conclude": answer("x+y and z")}
    pruned = solve(SubtaskTree(), "T", ScriptedBackend(tree_script(script))).output
    backend = ScriptedBackend(tree_script(script))
    baseline = solve(SubtaskTree(prune=False), "T", backend).output
    assert baseline.answer == pruned.answer == "x+y and z"
    assert "deep deep" in backend.requests[-1].prompt  # the baseline's root really holds the grandchild's work
    assert baseline.stats.peak_context_tokens == baseline.stats.unpruned_peak_context_tokens
    assert baseline.stats.peak_context_tokens == pruned.stats.unpruned_peak_context_tokens
    assert baseline.stats.context_prompt_tokens == pruned.stats.unpruned_prompt_tokens
    assert pruned.stats.peak_context_tokens < baseline.stats.peak_context_tokens


def test_tree_script_names_missing_replies():
    from plait.errors import ScriptExhaustedError

    with pytest.raises(NodeFailedError) as info:
        solve(SubtaskTree(), "T", ScriptedBackend(tree_script({"root": split("a")})))
    assert isinstance(info.value.cause, ScriptExhaustedError) and "'1'" in str(info.value.cause)
    with pytest.raises(ValueError, match="not a SubtaskTree prompt"):
        tree_call_key("hello")


def test_reply_strings_are_bounded_to_fit_max_tokens_even_when_a_budget_caps_it():
    """A model looping in the thought (smollm2-135m wrote ``12*2 = `` to max_tokens) is stopped by the schema."""
    backend = ScriptedBackend(tree_script(DEEP))
    solve(SubtaskTree(subtree_budget=300, on_budget="conclude", system=SHORT_SYSTEM), "T", backend)
    calls = {tree_call_key(r.prompt): r for r in backend.requests}

    def strings(params):
        schema = params.constraint.schema_
        reply = schema["anyOf"][0] if "anyOf" in schema else schema
        return reply["properties"]["thought"]["maxLength"], reply["properties"]["answer"]["maxLength"]

    thought, answer_chars = strings(calls["root"].params)
    assert calls["root"].params.max_tokens == 256 and thought + answer_chars < 256
    capped = calls["1.1"].params  # ran with max_tokens capped to what the subtree's budget had left
    assert capped.max_tokens < 100 and sum(strings(capped)) < capped.max_tokens < thought + answer_chars

"""budget= on every reasoning node (ReAct, Refine, SubtaskTree, PlanAndExecute, Cascade; Formulate in
tests/solvers): a hostile model that never finishes stops within the budget (the node's record never shows more
tokens than its budget), the budget changes behaviour (fewer turns/rounds/subtasks than without it), and a budget
too small for the first prompt is a one-line ConfigError naming the node."""

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import ConfigError, FunctionBackend, Graph, NodeFailedError, ReAct, ScriptedBackend

LOOP = "Thought: again.\nAction: scale[{\"value\": 1.0}]\n"
HOSTILE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(node, inputs, backend, **kw):
    g = Graph("g")
    g.add(node)
    return anyio.run(lambda: g.run(inputs, backend=backend, **kw))


def looping(reply: str, words: int):
    """A model that writes ``reply`` padded to ``words`` more tokens: as long as max_tokens allows."""
    return FunctionBackend(lambda request: reply + " pad" * words)


# -- ReAct ---------------------------------------------------------------------------------------------------


@HOSTILE
@given(budget=st.integers(min_value=300, max_value=3000), words=st.integers(min_value=0, max_value=400))
def test_a_react_agent_that_never_answers_stops_within_its_budget(registry, budget, words):
    backend = looping(LOOP, words)
    result = run(ReAct(registry, max_steps=50, budget=budget), {"task": "t"}, backend)
    out = result.output
    assert result.nodes["react"].tokens.total <= budget
    assert out.finished is False and out.stopped == "budget" and len(backend.requests) < 50


def test_a_react_budget_means_fewer_turns(registry):
    unbounded = run(ReAct(registry, max_steps=6), {"task": "t"}, ScriptedBackend([LOOP] * 6)).output
    assert unbounded.stopped == "max_steps" and len(unbounded.steps) == 6
    backend = ScriptedBackend([LOOP] * 6)
    result = run(ReAct(registry, max_steps=6, budget=700), {"task": "t"}, backend)
    assert result.output.stopped == "budget" and 1 <= len(result.output.steps) < 6
    last = backend.requests[-1]
    assert last.params.max_tokens <= 256  # the last turn got what was left, never more than a turn's max_tokens
    assert result.nodes["react"].tokens.total <= 700


def test_a_react_budget_too_small_for_the_first_prompt_is_refused(registry):
    backend = ScriptedBackend(["Final Answer: 1"])
    with pytest.raises(NodeFailedError) as info:
        run(ReAct(registry, budget=20), {"task": "t"}, backend)
    assert isinstance(info.value.cause, ConfigError) and backend.requests == []
    assert str(info.value.cause).startswith("ReAct 'react': budget=20 cannot hold its first prompt (")


def test_the_run_budget_still_stops_a_budgeted_react_run(registry):
    from plait import BudgetExceededError
    with pytest.raises(BudgetExceededError):
        run(ReAct(registry, max_steps=6, budget=5000), {"task": "t"}, ScriptedBackend([LOOP] * 6), token_budget=600)


# -- Refine --------------------------------------------------------------------------------------------------


def _solve(**kw):
    from plait import ChainStep
    from plait.planners import NumberParser
    return ChainStep("Q: {question}\nA:", NumberParser(int, constrain=False), name="solve", **kw)


def never_settling():
    """Revisions alternate 41 and 42 forever; every reply is as long as max_tokens allows."""
    calls = []

    def reply(request):
        calls.append(request)
        return f"{40 + len(calls) % 3} " + "pad " * 1000

    return FunctionBackend(reply)


@HOSTILE
@given(budget=st.integers(min_value=20, max_value=4000))
def test_a_refine_that_never_settles_stops_within_its_budget(budget):
    from plait import Refine
    result = run(Refine(_solve(), max_iterations=40, until=None, budget=budget, name="refine"), {"question": "6*7?"},
                 never_settling())
    out = result.output
    assert out.tokens <= budget
    assert sum(r.tokens.total for n, r in result.nodes.items() if n.startswith("refine")) <= budget
    assert out.stopped == "budget" and out.rounds < 40 and out.answer == out.drafts[-1]


def test_a_refine_budget_means_fewer_rounds_and_keeps_the_last_revision():
    from plait import Refine
    replies = ["41", "no", "42", "no"] * 5
    unbounded = run(Refine(_solve(), max_iterations=4, until=None, name="refine"), {"question": "6*7?"},
                    ScriptedBackend(replies)).output
    assert unbounded.rounds == 4 and unbounded.stopped == "limit"
    backend = ScriptedBackend(replies)
    result = run(Refine(_solve(sampling=None), max_iterations=4, until=None, budget=400, name="refine"),
                 {"question": "6*7?"}, backend)
    out = result.output
    assert out.stopped == "budget" and 1 <= out.rounds < 4 and out.answer == out.drafts[-1]
    assert len(out.critiques) == out.rounds and out.tokens <= 400
    assert all(r.params.max_tokens == 256 for r in backend.requests[1:])  # rounds are never cut short
    assert result.status == "ok" and result.failures == {}  # the loop exits by its route: no inner node fails


def test_a_one_round_refine_whose_budget_cannot_revise_returns_the_draft():
    from plait import Refine
    backend = ScriptedBackend(["41", "no", "42"])
    result = run(Refine(_solve(), max_iterations=1, budget=300, name="refine"), {"question": "6*7?"}, backend)
    out = result.output
    assert (out.answer, out.rounds, out.stopped, out.critiques) == (41, 0, "budget", [])
    assert result.status == "ok" and len(backend.requests) == 2  # the draft and the critique; no room to revise


def test_a_refine_budget_too_small_for_the_draft_prompt_is_refused():
    from plait import Refine
    backend = ScriptedBackend(["42"])
    with pytest.raises(NodeFailedError) as info:
        run(Refine(_solve(), budget=5, name="refine"), {"question": "6*7?"}, backend)
    assert str(info.value.cause).startswith("Refine 'refine': budget=5 cannot hold its first prompt (")
    assert backend.requests == []


def test_refine_and_its_step_cannot_both_have_a_budget():
    from plait import Refine
    with pytest.raises(ConfigError, match="its step 'solve' has its own budget=50; give the budget to the Refine"):
        Refine(_solve(budget=50), budget=500)


# -- SubtaskTree ---------------------------------------------------------------------------------------------


def always_splitting(breadth: int):
    """Splits whenever its reply schema allows it, else answers; every string as long as the schema allows."""
    import json

    def reply(request):
        schema = json.dumps(request.params.constraint.schema_) if request.params.constraint else ""
        longest = max(16, request.params.max_tokens * 2 // 5)
        thought = ("w " * longest)[:longest].strip()
        if '"subtasks"' in schema:
            return json.dumps({"thought": thought, "subtasks": [{"task": f"part {i}"} for i in range(breadth)]})
        return json.dumps({"thought": thought, "answer": "x"})

    return FunctionBackend(reply)


@HOSTILE
@given(budget=st.integers(min_value=400, max_value=20000))
def test_a_subtask_tree_that_always_splits_stops_within_its_budget(budget):
    from plait.planners import SubtaskTree
    tree = SubtaskTree(max_depth=3, max_breadth=3, budget=budget, max_reasks=0, name="tree")
    result = run(tree, {"task": "everything"}, always_splitting(3))
    assert result.nodes["tree"].tokens.total <= budget
    out = result.output
    assert out.stats.prompt_tokens + out.stats.completion_tokens <= budget and out.answer


def test_a_subtask_tree_budget_means_fewer_subtasks_and_an_answer_from_what_it_has():
    from plait.planners import SubtaskTree
    unbounded = run(SubtaskTree(max_depth=2, max_breadth=3, name="tree"), {"task": "t"}, always_splitting(3)).output
    assert unbounded.stats.tasks == 1 + 3 + 9 and unbounded.answer == "x"
    result = run(SubtaskTree(max_depth=2, max_breadth=3, budget=2500, name="tree"), {"task": "t"},
                 always_splitting(3))
    out = result.output
    done = [t for t in out.root.walk() if t.status == "done"]
    assert len(done) < 13 and result.nodes["tree"].tokens.total <= 2500
    assert out.answer.startswith("[unfinished: the 2500-token budget ran out]")
    assert any(t.status == "budget_exhausted" for t in out.root.walk())


def test_a_subtask_tree_budget_too_small_for_the_first_prompt_is_refused():
    from plait.planners import SubtaskTree
    backend = ScriptedBackend(["{}"])
    with pytest.raises(NodeFailedError) as info:
        run(SubtaskTree(budget=30, name="tree"), {"task": "t"}, backend)
    assert str(info.value.cause).startswith("SubtaskTree 'tree': budget=30 cannot hold its first prompt (")
    assert backend.requests == []


# -- PlanAndExecute ------------------------------------------------------------------------------------------


def plan_of_llm_steps(first: int, n: int) -> str:
    import json
    return json.dumps({"steps": [{"id": f"E{i}", "thought": "more", "tool": "llm",
                                  "args": {"prompt": "think " * 40}} for i in range(first, first + n)]})


def replanning_forever(n: int):
    """Plans n llm steps, answers each llm step at full length, and the solver always asks for a new plan."""
    plans = []

    def reply(request):
        prompt = request.prompt_text()
        if prompt.startswith("Make a plan"):
            plans.append(prompt)
            return plan_of_llm_steps(1 + n * (len(plans) - 1), n)
        if "Replan:" in prompt:
            return "Replan: " + "more " * 2000
        return "thought " * 2000

    return FunctionBackend(reply)


@HOSTILE
@given(budget=st.integers(min_value=700, max_value=8000), parallel=st.booleans())
def test_a_plan_and_execute_that_replans_forever_stops_within_its_budget(registry, budget, parallel):
    from plait import PlanAndExecute
    node = PlanAndExecute(registry, max_replans=6, parallel=parallel, budget=budget, name="pe")
    result = run(node, {"task": "t"}, replanning_forever(4))
    spent = sum(r.tokens.total for n, r in result.nodes.items() if n == "pe" or n.startswith("pe/"))
    assert spent <= budget == node.budget
    assert result.output.stopped in ("budget", "answer")


def test_a_plan_and_execute_budget_means_fewer_llm_steps_and_rounds(registry):
    from plait import PlanAndExecute
    from plait.executors import ToolFailure
    unbounded = run(PlanAndExecute(registry, max_replans=2, name="pe"), {"task": "t"}, replanning_forever(3))
    assert len(unbounded.output.plans) == 3 and unbounded.output.stopped == "answer"
    result = run(PlanAndExecute(registry, max_replans=2, budget=1500, parallel=False, name="pe"), {"task": "t"},
                 replanning_forever(3))
    out = result.output  # one plan and its three llm steps, then no room for the second plan
    assert out.stopped == "budget" and out.answer == "" and len(out.plans) == 1 and len(out.evidence) == 3
    assert result.nodes["pe"].tokens.total <= 1500
    # a smaller budget: the first llm step gets what is left, the others are not run
    out = run(PlanAndExecute(registry, max_replans=2, budget=700, parallel=False, name="pe"), {"task": "t"},
              replanning_forever(3)).output
    assert not isinstance(out.evidence["E1"], ToolFailure)
    assert [out.evidence[k].error for k in ("E2", "E3")] == ["not run: the node's token budget is spent"] * 2


def test_a_plan_and_execute_budget_too_small_for_the_planner_prompt_is_refused(registry):
    from plait import PlanAndExecute
    backend = ScriptedBackend(["{}"])
    with pytest.raises(NodeFailedError) as info:
        run(PlanAndExecute(registry, budget=50, name="pe"), {"task": "t"}, backend)
    assert str(info.value.cause).startswith("PlanAndExecute 'pe': budget=50 cannot hold its first prompt (")
    assert backend.requests == []


# -- Cascade -------------------------------------------------------------------------------------------------

TIERS = [f"m{i}" for i in range(6)]


def never_accepted():
    """Every tier's model writes as long as it may; the acceptance test never passes."""
    from plait.planners import ChainStep, Cascade, TextParser, predicate

    def cascade(**kw):
        step = ChainStep("Q: {question}\nA:", TextParser(), name="solve")
        return Cascade(TIERS, step=step, accept=predicate(lambda value: False), name="cascade", **kw)

    return cascade, {name: FunctionBackend(lambda request: "pad " * 5000) for name in TIERS}


@HOSTILE
@given(budget=st.integers(min_value=20, max_value=3000))
def test_a_cascade_that_is_never_accepted_stops_within_its_budget(budget):
    cascade, backends = never_accepted()
    g = Graph("g")
    g.add(cascade(budget=budget))
    result = anyio.run(lambda: g.run({"question": "2+2"}, backends=backends))
    out = result.output
    assert result.nodes["cascade"].tokens.total == out.tokens <= budget
    assert out.accepted is False and len(out.attempts) <= len(TIERS)


def test_a_cascade_budget_means_fewer_tiers_and_says_why():
    cascade, backends = never_accepted()
    g = Graph("g")
    g.add(cascade())
    unbounded = anyio.run(lambda: g.run({"question": "2+2"}, backends=backends)).output
    assert len(unbounded.attempts) == 6
    cascade, backends = never_accepted()
    g = Graph("g")
    g.add(cascade(budget=600))
    result = anyio.run(lambda: g.run({"question": "2+2"}, backends=backends))
    out = result.output
    assert 1 < len(out.attempts) < 6 and out.tokens <= 600 and out.value  # the last answer it had
    assert out.attempts[-1].reason == "the cascade's budget=600 tokens ran out"
    assert all(backends[name].requests == [] for name in TIERS[len(out.attempts):])
    # each tier but the last got its full max_tokens (256); the last got what was left
    assert [backends[t.tier].requests[0].params.max_tokens for t in out.attempts[:2]] == [256, 256]


def test_a_cascade_budget_too_small_for_the_first_tiers_prompt_is_refused():
    cascade, backends = never_accepted()
    g = Graph("g")
    g.add(cascade(budget=5))
    with pytest.raises(NodeFailedError) as info:
        anyio.run(lambda: g.run({"question": "2+2"}, backends=backends))
    assert str(info.value.cause).startswith("Cascade 'cascade': budget=5 cannot hold its first prompt (7 tokens)")

"""Old names keep working for one release, each with a DeprecationWarning that names the new one."""

import importlib

import anyio
import pytest

import plait
from plait import ChainStep, FanOut, PlanAndExecute, ReAct, SamplingParams, SubtaskTree, tool
from plait._deprecation import moved_names
from plait.executors import ToolRegistry
from plait.planners import LLMJudge, Planner, execute_plan

SAMPLING = SamplingParams(max_tokens=12, temperature=0.5)


@tool
def echo(text: str) -> str:
    """Echo."""
    return text


# (constructor, old keyword, new keyword, where the new one is stored)
RENAMED = [
    (lambda **kw: ChainStep("Q: {q}", **kw), "params", "sampling", lambda n: n.sampling),
    (lambda **kw: FanOut(ChainStep("Q: {q}"), k=2, **kw), "params", "sampling", lambda n: n.sampling),
    (lambda **kw: SubtaskTree(**kw), "params", "sampling", lambda n: n.sampling),
    (lambda **kw: ReAct([echo], **kw), "params", "sampling", lambda n: n.sampling),
    (lambda **kw: LLMJudge("{candidate}?", **kw), "params", "sampling", lambda n: n.step.sampling),
    (lambda **kw: Planner(ToolRegistry([echo]), fmt="text", **kw), "params", "sampling", lambda n: n.sampling),
    (lambda **kw: PlanAndExecute([echo], plan_format="text", **kw), "planner_params", "planner_sampling",
     lambda n: n.planner.sampling),
    (lambda **kw: PlanAndExecute([echo], **kw), "solver_params", "solver_sampling", lambda n: n.solver_sampling),
    (lambda **kw: PlanAndExecute([echo], **kw), "llm_params", "llm_sampling", lambda n: n.llm_sampling),
]


@pytest.mark.parametrize(("build", "old", "new", "stored"), RENAMED, ids=[f"{r[1]}-{i}" for i, r in enumerate(RENAMED)])
def test_old_sampling_keyword_warns_and_still_works(build, old, new, stored):
    assert stored(build(**{new: SAMPLING})) == SAMPLING
    with pytest.warns(DeprecationWarning, match=rf"\({old}=\.\.\.\) is deprecated, use .*\({new}=\.\.\.\)") as caught:
        node = build(**{old: SAMPLING})
    assert stored(node) == SAMPLING
    assert caught[0].filename == __file__  # the warning points at the caller's line


@pytest.mark.parametrize(("build", "old", "new", "stored"), RENAMED, ids=[f"{r[1]}-{i}" for i, r in enumerate(RENAMED)])
def test_old_and_new_keyword_together_is_an_error(build, old, new, stored):
    with pytest.raises(TypeError, match=rf"got both {new}= and {old}=, its old name; pass only {new}="):
        build(**{old: SAMPLING, new: SAMPLING})


def test_unknown_keywords_are_still_refused():
    with pytest.raises(TypeError, match="Planner\\(\\) got unexpected keyword argument\\(s\\) sampel"):
        Planner(ToolRegistry([echo]), sampel=SAMPLING)
    with pytest.raises(TypeError, match="LLMJudge\\(\\) got unexpected keyword argument\\(s\\) bogus"):
        LLMJudge("{candidate}?", bogus=1)
    with pytest.raises(TypeError):
        ChainStep("Q: {q}", sampel=SAMPLING)  # a node's catch-all goes on to Node(), which refuses it


def test_execute_plan_old_keyword():
    from plait import Graph, RunContext, ScriptedBackend
    from plait.executors import ToolRunner
    from plait.planners import Plan

    plan = Plan.model_validate({"steps": [{"id": "E1", "tool": "llm", "args": {"prompt": "hi"}}]})
    sent = []
    g = Graph("plan")

    @g.node
    async def run(ctx: RunContext) -> dict:
        with pytest.warns(DeprecationWarning, match=r"execute_plan\(llm_params=\.\.\.\) is deprecated"):
            return await execute_plan(plan, ToolRunner(ToolRegistry([echo])), ctx, llm_params=SAMPLING)

    backend = ScriptedBackend(lambda request: sent.append(request.params) or "hello")
    assert anyio.run(lambda: g.run(backend=backend)).output == {"E1": "hello"}
    assert sent == [SAMPLING]


@pytest.mark.parametrize("name", sorted(n for names in plait._MOVED.values() for n in names.split()))
def test_moved_top_level_name_warns_with_its_new_path(name):
    home = next(h for h, names in plait._MOVED.items() if name in names.split())
    with pytest.warns(DeprecationWarning, match=rf"^plait\.{name} is deprecated, use {home}\.{name} "
                                                 rf"\(from {home} import {name}\)"):
        value = getattr(plait, name)
    assert value is getattr(importlib.import_module(home), name)


def test_from_import_of_a_moved_name_warns():
    with pytest.warns(DeprecationWarning, match=r"plait\.Majority is deprecated, use plait\.planners\.Majority"):
        from plait import Majority
    from plait.planners import Majority as new

    assert Majority is new


def test_renamed_results_keep_their_old_names():
    from plait.planners import PlanResult, ReActResult

    for module in (plait, importlib.import_module("plait.planners")):
        with pytest.warns(DeprecationWarning, match=r"PlanOutcome is deprecated, use plait\.planners\.PlanResult"):
            assert module.PlanOutcome is PlanResult
        with pytest.warns(DeprecationWarning, match=r"ReActOutcome is deprecated, use plait\.planners\.ReActResult"):
            assert module.ReActOutcome is ReActResult


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="module 'plait' has no attribute 'Nonexistent'"):
        plait.Nonexistent  # noqa: B018
    getattr_ = moved_names("pkg", {"Old": "plait.planners.Majority"})
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'Other'"):
        getattr_("Other")


def test_deprecations_are_errors_in_this_test_suite():
    """pyproject's filterwarnings turns plait's deprecations into errors, so no test relies on an old name."""
    with pytest.raises(DeprecationWarning):
        ChainStep("Q: {q}", params=SAMPLING)

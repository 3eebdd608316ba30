"""Each reasoning example once on the real vLLM backend (small model): the structure of the result, not its wisdom.

Decoding is greedy or seeded (the examples' votes carry a seed), so a run repeats; the assertions hold for any
reply the model could give: every schema plait sends is bounded to end a loop before ``max_tokens`` (smollm2-135m
repeated ``12*2 = `` in a subtask's thought, and one plan step, until the limit), so constrained replies parse.
Only documented outcomes of a small model are accepted as failures: a vote where no sample gave a number.

Skipped when vLLM or plait's vLLM backend is not installed. One engine serves
the whole module (starting one takes 20 to 40 s on CPU).
"""

import importlib.util
from pathlib import Path

import anyio
import pytest

pytest.importorskip("vllm")
executors = pytest.importorskip("plait.executors")
if not hasattr(executors, "backend_for"):
    pytest.skip("plait's vLLM backend (plait.executors.backend_for) is not installed", allow_module_level=True)

from plait import NodeFailedError
from plait.errors import PlanError, VoteError  # noqa: E402

pytestmark = pytest.mark.vllm
ROOT = Path(__file__).resolve().parents[2]
MODEL = "smollm2-135m"


def load(name):
    spec = importlib.util.spec_from_file_location(f"_vllm_example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run_on_vllm():
    backend = executors.backend_for(MODEL, max_model_len=2048)  # the settings of the session engine: shared
    portal_cm = anyio.from_thread.start_blocking_portal()
    portal = portal_cm.__enter__()
    portal.call(backend.start)

    def run(graph, value, **options):
        return portal.call(lambda: graph.run(value, backend=backend, **options))

    yield run
    portal.call(backend.aclose)
    portal_cm.__exit__(None, None, None)


def test_self_consistency_on_vllm(run_on_vllm):
    module = load("self_consistency")
    try:
        out = run_on_vllm(module.graph, {"question": "Tom has 3 bags of 4 apples and 2 more apples. How many?"}).output
    except NodeFailedError as exc:  # a tiny model may give no parsable number at all: the vote says so
        assert isinstance(exc.cause, VoteError) and exc.cause.result.samples in (4, 8)
        return
    assert set(out) == {"answer", "agreement", "votes", "samples", "failed", "stopped_early", "completion_tokens"}
    assert out["samples"] in (4, 8) and 0 < out["agreement"] <= 1 and out["completion_tokens"] > 0
    assert isinstance(out["answer"], int) and str(out["answer"]) in out["votes"]


def test_subtask_tree_on_vllm(run_on_vllm):
    module = load("subtask_tree")
    result = run_on_vllm(module.graph, {"task": "What is 3 times 8, and what is 2 times 6?"})
    out = result.output
    assert set(out) == {"answer", "parts", "calls", "peak_context_tokens", "unpruned_peak_context_tokens",
                        "cache_hit_rate"}
    assert isinstance(out["answer"], str) and out["calls"] >= 1 and result.tokens.requests == out["calls"]
    assert all(isinstance(path, str) and isinstance(part, str) for path, part in out["parts"].items())
    assert out["peak_context_tokens"] <= out["unpruned_peak_context_tokens"]
    tree = result.nodes["tree"].output
    assert all(task.status == "done" and task.conclusion is not None for task in tree.root.walk())
    assert len(tree.root.subtasks) <= 3 and tree.stats.max_depth_reached <= 2  # max_breadth, max_depth


def test_mixed_reasoning_on_vllm(run_on_vllm):
    module = load("mixed_reasoning")
    try:
        result = run_on_vllm(module.graph, {"problem": "A crate holds 12 eggs. 2 crates and 3 eggs are sold. "
                                                       "How many eggs are sold?"})
    except NodeFailedError as exc:  # the vote found no parsable number (the tree's replies always parse)
        assert exc.node == "vote" and isinstance(exc.cause, VoteError) and exc.cause.result.samples in (3, 6)
        return
    assert set(result.output) == {"tree_answer", "vote_answer", "agree"}
    assert isinstance(result.output["vote_answer"], int)
    assert result.nodes["facts"].status == "ok" and result.nodes["tree"].tokens.requests >= 1
    assert isinstance(result.output["tree_answer"], str) and isinstance(result.output["agree"], bool)


def test_plan_execute_example_on_vllm_yields_a_valid_plan(run_on_vllm):
    """The countries example's tools on the real engine: the planner's structured output is a complete plan.

    At 320 tokens the plan schema allows 8 steps of 80-character strings; unbounded by max_tokens (24 steps of
    240), smollm2-135m repeated one step until the limit cut every attempt off.
    """
    from plait import PlanAndExecute, SamplingParams
    from plait.planners import Plan, plan_and_execute_graph, plan_problems

    module = load("plan_execute_countries")
    graph = plan_and_execute_graph(module.TOOLS, name="countries_vllm", max_repairs=2, max_replans=0,
                                   planner_sampling=SamplingParams(max_tokens=320),
                                   solver_sampling=SamplingParams(max_tokens=48))
    node = next(iter(graph.nodes.values()))
    assert isinstance(node, PlanAndExecute)
    try:
        result = run_on_vllm(graph, {"task": "What is the population of the country whose capital is Canberra?"})
    except NodeFailedError as exc:  # documented: no valid plan (e.g. wrong references) after max_repairs
        assert isinstance(exc.cause, PlanError) and exc.cause.problems, exc
        assert not any("not valid JSON" in p for p in exc.cause.problems)  # never cut off: the schema ends loops
        return
    attempts = [e.data for e in result.events if e.kind == "custom" and e.name == "plan"]
    assert attempts and all(a["format"] == "json" for a in attempts)
    assert result.nodes[node.name].tokens.requests >= 2  # a plan, then the solver
    outcome = result.output
    assert outcome.plans and all(isinstance(plan, Plan) for plan in outcome.plans)
    plan = outcome.plans[-1]
    assert plan.steps and plan_problems(plan, node.tools) == [] and attempts[-1]["valid"]
    assert plan.ids == [f"E{i}" for i in range(1, len(plan.steps) + 1)]  # numbered by position
    assert set(outcome.evidence) == set(plan.ids)  # every step ran; its result (or error) is evidence
    assert isinstance(outcome.answer, str)

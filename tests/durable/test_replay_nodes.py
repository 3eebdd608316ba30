"""Every built-in reasoning node replays from its checkpoint with no backend and no tools.

The nodes read ``ctx.backend`` (to decide on structured-output constraints, to
count tokens): in a checkpointed run that is the recording wrapper, and in a
replay the wrapper reports the recorded backend's capabilities, so the nodes
send the same requests and every one is answered from the records.
"""

import json

import pytest
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from plait import (
    ChainStep,
    FanOut,
    FunctionBackend,
    Graph,
    PlanAndExecute,
    ReAct,
    ScriptedBackend,
    SQLiteCheckpointer,
    SubtaskTree,
    tool,
)
from plait.executors import Sample, ToolRegistry
from plait.planners import (
    BestOfN,
    EarlyStop,
    LLMJudge,
    LogprobWeighted,
    Majority,
    ModelParser,
    NumberParser,
    tree_script,
)
from plait.solvers import Formulate, ProposeAndRetract

pytestmark = pytest.mark.anyio


class Answer(BaseModel):
    value: int


def solve_step() -> ChainStep:
    return ChainStep("Q: {question}\nA:", NumberParser(int, constrain=False), name="solve")


def chain_step():
    return ChainStep("Q: {question}\nA as JSON:", ModelParser(Answer), name="solve"), {"question": "2+2"}, \
        ScriptedBackend(['{"value": 4}'])


def fan_out_majority():
    return FanOut(solve_step(), k=4, aggregate=Majority(), name="vote"), {"question": "2+2"}, \
        ScriptedBackend(lambda r: [["4", "4", "5", "4"][i] for i in range(r.params.n)])


def early_stop():
    replies = ["The answer is 55.", "55", "45", "55"]
    return FanOut(solve_step(), k=8, aggregate=EarlyStop(wave=4, confidence=0.75), name="vote"), \
        {"question": "17*3+4"}, ScriptedBackend(lambda r: [replies[i % 4] for i in range(r.params.n)])


def logprob_weighted():
    replies = [Sample(text="4", completion_tokens=1, cumulative_logprob=-0.1),
               Sample(text="5", completion_tokens=1, cumulative_logprob=-3.0),
               Sample(text="5", completion_tokens=1, cumulative_logprob=-3.0)]
    return FanOut(solve_step(), k=3, aggregate=LogprobWeighted(), name="vote"), {"question": "2+2"}, \
        ScriptedBackend(replies)


def best_of_n_with_a_judge():
    judge = LLMJudge("Rate the answer {candidate} to {question} from 0 to 10:")
    backend = ScriptedBackend(lambda r: {"Q:": ["3", "4", "5"]}.get(r.prompt[:2]) or
                              ("9" if "answer 4 " in r.prompt_text() else "1"))
    return FanOut(solve_step(), k=3, aggregate=BestOfN(judge), name="vote"), {"question": "2+2"}, backend


def subtask_tree():
    def reply(thought, answer=None, subtasks=None):
        if subtasks is not None:
            return json.dumps({"thought": thought, "subtasks": [{"task": t} for t in subtasks]})
        return json.dumps({"thought": thought, "answer": answer})

    backend = ScriptedBackend(tree_script({
        "root": reply("two parts", subtasks=["legs of 3 spiders?", "legs of 2 ants?"]),
        "1": reply("8 each", "24"), "2": reply("6 each", "12"),
        "root:conclude": reply("add", "36")}))
    return SubtaskTree(max_depth=2, max_breadth=3, name="tree"), {"task": "legs?"}, backend


def formulate():
    problem = "x y in {1,2,3}\nx + y == 5\nx < y"  # the formulation language, Formulate's default
    return Formulate(name="formulate"), {"problem": "x + y = 5 and x < y, both in 1..3"}, \
        ScriptedBackend([problem])


def propose_and_retract():
    from plait.solvers import CSP

    csp = CSP.model_validate({"variables": [{"name": "x", "domain": [1, 2, 3]},
                                            {"name": "y", "domain": [1, 2, 3]}],
                              "constraints": ["x + y == 5", "x < y"]})
    node = ProposeAndRetract(name="propose")
    return node, {"csp": csp, "problem": "pick x and y"}, \
        ScriptedBackend(['{"x": 3, "y": 3}', '{"x": 2, "y": 3}', '{"x": 2, "y": 3}'])


CALLS: list[str] = []


@tool
def price(symbol: str) -> float:
    """Price of a stock."""
    CALLS.append(symbol)
    return {"AAA": 10.0, "BBB": 2.5}[symbol]


def plan_and_execute():
    plan = {"steps": [{"tool": "price", "args": {"symbol": "AAA"}}, {"tool": "price", "args": {"symbol": "BBB"}}]}
    backend = ScriptedBackend(lambda r: json.dumps(plan) if r.prompt_text().startswith("Make a plan")
                              else "Answer: AAA")
    return PlanAndExecute(ToolRegistry([price]), name="agent"), {"task": "which costs more?"}, backend


def react():
    backend = ScriptedBackend(["Thought: look it up\nAction: price[AAA]", "Thought: done\nFinal Answer: 10"])
    return ReAct(ToolRegistry([price]), name="agent"), {"task": "price of AAA?"}, backend


CASES = [chain_step, fan_out_majority, early_stop, logprob_weighted, best_of_n_with_a_judge, subtask_tree,
         formulate, propose_and_retract, plan_and_execute, react]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
async def test_node_replays_without_a_backend(case, tmp_path):
    node, value, backend = case()
    g = Graph(case.__name__)
    g.add(node)
    path = tmp_path / "runs.db"
    recorded = await g.run(value, backend=backend, checkpoint=path, run_id="r")
    sent = len(backend.requests)
    assert sent > 0 and recorded.status == "ok"
    tools_called = len(CALLS)
    replayed = await g.run(checkpoint=path, run_id="r", replay=True)  # no backend, and tools must not run
    assert _untimed(replayed.output) == _untimed(recorded.output)
    assert len(backend.requests) == sent and len(CALLS) == tools_called
    assert replayed.nodes[node.name].restored == 0  # the node's code ran again


def _untimed(value):
    """The output as JSON without wall-clock measurements (a solver's solve_time), which no replay repeats."""
    data = to_jsonable_python(value)
    if isinstance(data, dict):
        return {k: _untimed(v) for k, v in data.items() if k != "solve_time"}
    if isinstance(data, list):
        return [_untimed(v) for v in data]
    return data


class PlainBackend(FunctionBackend):
    """A backend without structured outputs: nodes must not send it a constraint."""

    supports_structured_output = False


@pytest.mark.parametrize("structured", [True, False])
async def test_replay_reports_the_recorded_capabilities(structured, tmp_path):
    cls = FunctionBackend if structured else PlainBackend
    backend = cls(lambda r: '{"value": 4}')
    node, value, _ = chain_step()
    g = Graph("g")
    g.add(node)
    path = tmp_path / "runs.db"
    await g.run(value, backend=backend, checkpoint=path, run_id="r")
    assert (backend.requests[0].params.constraint is not None) is structured
    replayed = await g.run(checkpoint=path, run_id="r", replay=True)
    assert replayed.output == Answer(value=4)
    with SQLiteCheckpointer(path) as store:
        assert store.get_run("r").model == "scripted"


async def test_a_resumed_node_reaches_the_same_records_through_ctx_backend(tmp_path):
    """Calling ctx.backend directly (not ctx.generate) is recorded and replayed as well."""
    from plait import Request, RunContext

    g = Graph("g")

    @g.node
    async def direct(q: str, ctx: RunContext) -> str:
        return (await ctx.backend.generate_one(Request(prompt=q, tag="direct"))).text

    path = tmp_path / "runs.db"
    await g.run("hi", backend=ScriptedBackend(["hello"]), checkpoint=path, run_id="r")
    assert (await g.run(checkpoint=path, run_id="r", replay=True)).output == "hello"

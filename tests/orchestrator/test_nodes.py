"""Node classes, dynamic signatures, and subgraph failure policies."""

import pytest
from pydantic import BaseModel

from plait import (
    BudgetExceededError,
    Graph,
    Node,
    NodeFailedError,
    Request,
    RunContext,
    SamplingParams,
    ScriptedBackend,
)
from plait.orchestrator import Param, Signature

pytestmark = pytest.mark.anyio


class Summary(BaseModel):
    words: int
    first: str


class Summarize(Node):
    """A node class: inputs and output come from run()'s annotations."""

    def __init__(self, limit: int, **policy):
        super().__init__(**policy)
        self.limit = limit

    async def run(self, text: str, ctx: RunContext) -> Summary:
        ctx.emit("summarizing", limit=self.limit)
        words = text.split()[: self.limit]
        return Summary(words=len(words), first=words[0] if words else "")


class Template(Node):
    """A node whose inputs are declared at run time (template variables)."""

    def __init__(self, template: str, variables: dict[str, type], **policy):
        super().__init__(**policy)
        self.template, self.variables = template, variables

    def signature(self) -> Signature:
        params = {name: Param(name, tp) for name, tp in self.variables.items()}
        return Signature(params, str, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict) -> str:
        return (await ctx.generate(Request(prompt=self.template.format(**kwargs)))).text


async def test_node_class_with_typed_run():
    g = Graph("classes")
    node = g.add(Summarize(limit=3, name="sum"))
    assert node.params["text"].annotation is str and node.output_type is Summary

    @g.node
    def report(sum: Summary) -> str:
        return f"{sum.words}:{sum.first}"

    g.edge(node, report)
    result = await g.run("alpha beta gamma delta")
    assert result.output == "3:alpha"
    assert result["sum"] == Summary(words=3, first="alpha")
    assert [e.data for e in result.events if e.kind == "custom"] == [{"limit": 3}]
    assert Summarize(limit=1).name == "summarize"  # default name from the class


async def test_dynamic_signature_inputs_are_validated_and_typed():
    g = Graph("template")
    node = g.add(Template("{city} has {n} parks", {"city": str, "n": int}, name="tpl"))
    backend = ScriptedBackend(lambda r: r.prompt_text().upper())
    result = await g.run({"city": "Oslo", "n": "7"}, backend=backend)  # "7" coerced to int
    assert result.output == "OSLO HAS 7 PARKS"
    assert set(node.params) == {"city", "n"}
    with pytest.raises(Exception, match="input 'n'"):
        await g.run({"city": "Oslo", "n": "many"}, backend=backend)


async def test_subgraph_failure_obeys_the_subgraph_nodes_policy():
    inner = Graph("inner")

    @inner.node
    def explode(v: int) -> int:
        raise ValueError("inner failure")

    outer = Graph("outer")
    outer.add(inner, name="soft", on_error="skip")
    outer.add(lambda v: v * 2, name="other")
    result = await outer.run({"v": 2})
    assert result.status == "partial"
    assert result.output == {"other": 4}
    assert "inner failure" in result.nodes["soft"].error
    assert result.nodes["soft/explode"].status == "failed"

    strict = Graph("strict")
    strict.add(inner, name="hard")
    with pytest.raises(NodeFailedError, match="'hard' failed.*'hard/explode' failed"):
        await strict.run({"v": 2})


async def test_budget_exceeded_inside_subgraph_stops_the_whole_run():
    inner = Graph("spender")

    @inner.node
    async def spend(q: str, ctx: RunContext) -> str:
        request = Request(prompt=q, params=SamplingParams(max_tokens=3))  # reserves 3 + 3 tokens
        await ctx.generate(request)
        return (await ctx.generate(request)).text

    outer = Graph("outer_budget")
    outer.add(inner, name="sub", on_error="skip")  # a budget stop is not a node failure to skip
    with pytest.raises(BudgetExceededError) as info:
        await outer.run("a b c", backend=ScriptedBackend(lambda r: "x y z"), token_budget=10)
    assert info.value.node == "sub/spend"
    assert info.value.partial.tokens.total == 6

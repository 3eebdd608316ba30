"""Batch runs: one result per input, failures recorded, resumable, robust to a flaky backend."""

import json

import pytest
from batch_pipeline import graph, make_backend

from plait import FunctionBackend, Graph, MemoryCheckpointer, RetryPolicy, run_batch
from plait.executors import FlakyBackend
from plait.durable import InvalidInput

pytestmark = pytest.mark.anyio


def expected(x: int) -> dict:
    return {"x": x, "text": f"<DRAFT FOR {x}>", "score": (x * 7919) % 101}


async def test_every_input_gets_one_result_in_order(tmp_path):
    out = tmp_path / "results.jsonl"
    inputs = [{"x": i} for i in range(60)] + [InvalidInput("line 61 is not valid JSON")]
    result = await run_batch(graph, inputs, backend=make_backend(), concurrency=8, output=out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(61))
    assert [item.index for item in result.items] == list(range(61))
    for line in lines[:60]:
        x = line["index"]
        if x % 50 == 49:
            assert line["status"] == "failed" and f"input {x} is poisoned" in line["error"]
        else:
            assert line["status"] == "ok" and line["output"] == expected(x)
    assert lines[60]["status"] == "failed" and "not valid JSON" in lines[60]["error"]
    assert result.ok == 59 and result.failed == 2


async def test_resume_skips_finished_inputs_and_repairs_the_results_file(tmp_path):
    store = MemoryCheckpointer()
    out = tmp_path / "results.jsonl"
    inputs = [{"x": i} for i in range(20)]
    calls = []
    backend = FunctionBackend(lambda r: calls.append(r.prompt) or f"<{r.prompt_text()}>", prefix_cache=False)
    await run_batch(graph, inputs[:12], backend=backend, checkpoint=store, batch_id="b", output=out)
    assert len(calls) == 12
    # as a kill would leave it: the last line torn in half, one finished input's line missing
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:10]) + "\n" + lines[11][: len(lines[11]) // 2])
    result = await run_batch(graph, inputs, backend=backend, checkpoint=store, batch_id="b", output=out)
    assert len(calls) == 20  # only the 8 new inputs reached the model
    assert result.resumed == 12
    final = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["index"] for line in final] == list(range(20))
    assert all(line["output"] == expected(line["index"]) for line in final)


async def test_changed_input_under_the_same_batch_id_is_reported_not_reused(tmp_path):
    store = MemoryCheckpointer()
    await run_batch(graph, [{"x": 1}], backend=make_backend(), checkpoint=store, batch_id="b")
    result = await run_batch(graph, [{"x": 2}], backend=make_backend(), checkpoint=store, batch_id="b")
    assert result.items[0].status == "failed" and "different input" in result.items[0].error


async def test_id_field_names_each_result(tmp_path):
    inputs = [{"id": f"q{i}", "x": i} for i in range(3)]
    result = await run_batch(graph, inputs, backend=make_backend(), id_field="id")
    assert [(item.id, item.output["x"]) for item in result.items] == [("q0", 0), ("q1", 1), ("q2", 2)]


async def test_flaky_backend_batch_completes_with_retries_recorded():
    """Errors and hangs injected at random (fixed seed): node timeouts cut hangs, retries recover both."""
    g = Graph("flaky")

    @g.node(retry=RetryPolicy(attempts=8, backoff=0.0), timeout=0.5)
    async def ask(x: int, ctx) -> str:
        return (await ctx.generate(__import__("plait").Request(prompt=f"q{x}"))).text

    inner = FunctionBackend(lambda r: r.prompt_text().upper(), prefix_cache=False)
    flaky = FlakyBackend(inner, error_rate=0.2, hang_rate=0.05, seed=7)
    result = await run_batch(g, list(range(100)), backend=flaky, concurrency=16)
    assert [item.status for item in result.items] == ["ok"] * 100
    assert [item.output for item in result.items] == [f"Q{i}" for i in range(100)]
    assert flaky.errors > 5 and flaky.hangs > 0
    assert sum(item.retries for item in result.items) == flaky.errors + flaky.hangs


async def test_bad_batch_arguments():
    with pytest.raises(ValueError, match="concurrency"):
        await run_batch(graph, [], concurrency=0)
    with pytest.raises(ValueError, match="batch_id"):
        await run_batch(graph, [], batch_id="a/b")


async def test_malformed_output_is_repaired_and_a_hanging_tool_is_cut(tmp_path):
    """In a checkpointed batch: bad model text goes through the step's re-ask path; a hung tool times out."""
    import re

    import anyio

    from plait import ChainStep, RunContext, tool
    from plait.executors import ToolRegistry, ToolRunner
    from plait.planners import NumberParser

    @tool(timeout=0.2)
    async def lookup(n: int) -> int:
        """Double a number, slowly for multiples of four."""
        if n % 4 == 0:
            await anyio.sleep(3600)
        return 2 * n

    asked: dict[str, int] = {}

    def model(request):
        q = re.search(r"Q: (\d+)", request.prompt_text()).group(1)
        asked[q] = asked.get(q, 0) + 1
        if int(q) % 3 == 0 and asked[q] == 1:
            return "I would rather not say."  # no number: the parser fails and the step re-asks
        return f"The answer is {q}"

    g = Graph("repairs")
    solve = g.add(ChainStep("Q: {q}\nA:", NumberParser(int), name="solve"))

    @g.node
    async def fetch(solve: int, ctx: RunContext) -> str:
        runner = ToolRunner(ToolRegistry([lookup]), remember=ctx.remember)
        return str(await runner.call("lookup", {"n": solve}))

    g.edge(solve, fetch)
    store = MemoryCheckpointer()
    result = await run_batch(g, [str(i) for i in range(12)], backend=FunctionBackend(model), concurrency=12,
                             checkpoint=store)
    outputs = [item.output for item in result.items]
    assert all(item.status == "ok" for item in result.items)
    for i, out in enumerate(outputs):
        expected = "ERROR from lookup: TimeoutError: tool 'lookup' timed out after 0.2s" if i % 4 == 0 else str(2 * i)
        assert out == expected, (i, out)
    assert {q: n for q, n in asked.items() if n > 1} == {str(i): 2 for i in range(0, 12, 3)}

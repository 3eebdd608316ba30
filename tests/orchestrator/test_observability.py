"""Events, run records, JSONL traces, streaming, progress display, Mermaid and DOT export."""

import io

import anyio
import pytest

from plait import Graph, NodeFailedError, read_trace, Request, Route, RunContext, ScriptedBackend
from plait.orchestrator import (
    JsonlTrace,
    NodeFinished,
    NodeStarted,
    RichProgress,
    RunFinished,
    RunStarted,
    TokensUsed,
)

pytestmark = pytest.mark.anyio


def _chain() -> Graph:
    g = Graph("observed")

    @g.node
    async def ask(q: str, ctx: RunContext) -> str:
        ctx.emit("note", detail="asking")
        return (await ctx.generate(Request(prompt=q))).text

    @g.node
    def shout(ask: str) -> str:
        return ask.upper()

    g.edge(ask, shout)
    return g


async def test_event_stream_order():
    g = _chain()
    events = [e async for e in g.stream("hi", backend=ScriptedBackend(["hello"]))]
    kinds = [(e.kind, getattr(e, "node", None)) for e in events]
    assert kinds == [
        ("run_started", None),
        ("node_started", "ask"),
        ("custom", "ask"),
        ("tokens_used", "ask"),
        ("node_finished", "ask"),
        ("node_started", "shout"),
        ("node_finished", "shout"),
        ("run_finished", None),
    ]
    times = [e.t for e in events]
    assert times == sorted(times)
    assert len({e.run_id for e in events}) == 1
    assert events[-1].status == "ok"
    assert events[3].prompt_tokens == 1 and events[3].completion_tokens == 1


async def test_stream_as_context_manager_gives_result_and_can_stop_early():
    g = _chain()
    async with g.stream("hi", backend=ScriptedBackend(["hello"])) as run:
        seen = [e async for e in run]
    assert isinstance(seen[0], RunStarted) and isinstance(seen[-1], RunFinished)
    assert (await run.result()).output == "HELLO"

    slow = Graph("slow_stream")

    @slow.node
    async def wait(x: int) -> int:
        await anyio.sleep(30)
        return x

    async with slow.stream(1) as run:
        async for event in run:
            if isinstance(event, NodeStarted):
                break  # leaving the block cancels the run
    assert run.run_result.status == "cancelled"


async def test_stream_raises_run_error_after_final_event():
    g = Graph("stream_fail")

    @g.node
    def bad(x: int) -> int:
        raise ValueError("nope")

    seen = []
    with pytest.raises(NodeFailedError):
        async for event in g.stream(1):
            seen.append(event.kind)
    assert seen[-1] == "run_finished"


async def test_run_record_has_outputs_timings_and_tokens():
    result = await _chain().run("hi", backend=ScriptedBackend(["hello there"]))
    ask = result.nodes["ask"]
    assert ask.status == "ok" and ask.outputs == ["hello there"] and ask.runs == 1
    assert ask.started is not None and ask.finished >= ask.started and ask.busy >= 0
    assert ask.tokens.completion_tokens == 2 and ask.tokens.prompt_tokens == 1
    assert result.tokens.total == 3
    assert result.completed() == {"ask": "hello there", "shout": "HELLO THERE"}
    assert "ask" in result.summary() and "3 tokens" in result.summary()
    finished = [e for e in result.events if isinstance(e, NodeFinished)]
    assert [e.output for e in finished] == ["hello there", "HELLO THERE"]


async def test_jsonl_trace_written_for_every_event(tmp_path):
    path = tmp_path / "trace.jsonl"
    result = await _chain().run("hi", backend=ScriptedBackend(["hello"]), trace=path)
    records = read_trace(path)
    assert [r["kind"] for r in records] == [e.kind for e in result.events]
    assert records[0]["graph"] == "observed"
    assert records[-1]["kind"] == "run_finished" and records[-1]["status"] == "ok"
    tokens = [r for r in records if r["kind"] == "tokens_used"]
    assert tokens[0]["node"] == "ask" and tokens[0]["run_total"] == 2


async def test_trace_sink_and_on_event_callbacks(tmp_path):
    seen = []
    path = tmp_path / "t.jsonl"
    with JsonlTrace(path) as trace:
        await _chain().run("hi", backend=ScriptedBackend(["x"]), on_event=[trace, seen.append], keep_events=False)
    assert len(read_trace(path)) == len(seen) == 8
    assert any(isinstance(e, TokensUsed) for e in seen)


async def test_rich_progress_display_renders():
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=100)
    g = _chain()
    with RichProgress(total_nodes=2, console=console) as progress:
        await g.run("hi", backend=ScriptedBackend(["x"]), on_event=progress)
    text = buffer.getvalue()
    assert "plait" in text and "2/2" in text
    await g.run("hi", backend=ScriptedBackend(["x"]), progress=True)  # the built-in option works too


def _exportable() -> Graph:
    g = Graph("export")

    @g.node
    def split(text: str) -> list[str]:
        return text.split()

    @g.node
    def each(word: str) -> int:
        return len(word)

    @g.node
    def decide(each: list[int]) -> Route[int]:
        return Route("big", sum(each))

    big = g.add(lambda decide: decide, name="big")
    small = g.add(lambda decide: decide, name="small")
    g.map(split, each).edge(each, decide).route(decide, [big, small])
    return g


def test_mermaid_export():
    assert _exportable().to_mermaid() == (
        "flowchart TD\n"
        '    split["split"]\n'
        '    each[["each"]]\n'
        '    decide{{"decide"}}\n'
        '    big["big"]\n'
        '    small["small"]\n'
        "    split ==>|map| each\n"
        "    each --> decide\n"
        "    decide -.->|route| big\n"
        "    decide -.->|route| small\n"
    )


def test_dot_export():
    dot = _exportable().to_dot()
    assert dot.startswith('digraph "export" {')
    assert '"split" -> "each" [label="map", style=bold];' in dot
    assert '"decide" [shape=diamond];' in dot
    assert '"decide" -> "small" [label="route", style=dashed];' in dot
    assert dot.rstrip().endswith("}")


async def test_breaking_out_of_bare_stream_cancels_the_run_cleanly():
    import asyncio

    g = Graph("bare_break")
    state = {"finished": False, "cancelled": False}

    @g.node
    async def wait(x: int) -> int:
        try:
            await anyio.sleep(30)
        except BaseException:
            state["cancelled"] = True
            raise
        state["finished"] = True
        return x

    before = {t for t in asyncio.all_tasks() if not t.done()}
    stream = g.stream(1)
    async for event in stream:
        if isinstance(event, NodeStarted):
            break
    for _ in range(20):
        await anyio.sleep(0.01)
        if state["cancelled"]:
            break
    assert state == {"finished": False, "cancelled": True}
    assert {t for t in asyncio.all_tasks() if not t.done()} - before == set()
    assert stream.run_result.status == "cancelled"


async def test_a_trace_carries_the_graph_shape_node_inputs_and_models(tmp_path):
    """What `plait view` draws from a trace alone: edges (subgraphs nested), each activation's inputs, models."""
    inner = Graph("inner")
    inner.add(lambda shout: shout + "!", name="bang")
    g = _chain()
    g.add(inner, name="tail")
    g.edge("shout", "tail")
    path = tmp_path / "t.jsonl"
    await g.run("hi", backend=ScriptedBackend(["hello"], model="m1"), trace=path)
    events = read_trace(path)
    shape = events[0]["shape"]
    assert {(e["src"], e["dst"]) for e in shape["edges"]} == {("ask", "shout"), ("shout", "tail")}
    assert [n["name"] for n in next(n for n in shape["nodes"] if n["name"] == "tail")["graph"]["nodes"]] == ["bang"]
    assert events[0]["inputs"] == {"q": "hi"}
    started = {e["node"]: e["inputs"] for e in events if e["kind"] == "node_started"}
    assert started["shout"] == {"ask": "hello"} and started["tail/bang"] == {"shout": "HELLO"}
    assert [e["model"] for e in events if e["kind"] == "tokens_used"] == ["m1"]

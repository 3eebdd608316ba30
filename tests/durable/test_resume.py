"""Checkpointed runs: finished nodes are restored on resume, never run twice; replay needs no model."""

import threading

import pytest

from plait import (
    CheckpointError,
    CheckpointMismatchError,
    FunctionBackend,
    Graph,
    MemoryCheckpointer,
    NodeFailedError,
    Request,
    RetryPolicy,
    Route,
    RunContext,
    SamplingParams,
    ScriptedBackend,
    SQLiteCheckpointer,
)
from plait.errors import ReplayMissError

pytestmark = pytest.mark.anyio


class Flag:
    """A switch a test flips between the first run and the resume."""

    def __init__(self, on: bool = True):
        self.on = on


def pipeline(calls: list[str], fail: Flag) -> Graph:
    g = Graph("pipeline")

    @g.node
    def parse(text: str) -> list[int]:
        calls.append("parse")
        return [int(t) for t in text.split()]

    @g.node
    async def describe(parse: list[int], ctx: RunContext) -> str:
        calls.append("describe")
        c = await ctx.generate(Request(prompt=f"describe {parse}", params=SamplingParams(max_tokens=5)))
        return c.text

    @g.node
    def total(parse: list[int]) -> int:
        calls.append("total")
        return sum(parse)

    @g.node
    def report(describe: str, total: int) -> str:
        calls.append("report")
        if fail.on:
            raise RuntimeError("disk full")
        return f"{describe}: {total}"

    g.edge(parse, describe).edge(parse, total).edge(describe, report).edge(total, report)
    return g


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = MemoryCheckpointer() if request.param == "memory" else SQLiteCheckpointer(tmp_path / "runs.db")
    yield s
    s.close()


async def test_resume_runs_only_unfinished_nodes(store):
    calls, fail = [], Flag()
    g = pipeline(calls, fail)
    backend = ScriptedBackend(["numbers"])
    with pytest.raises(NodeFailedError) as info:
        await g.run("1 2 3", backend=backend, checkpoint=store, run_id="r1")
    assert sorted(calls) == ["describe", "parse", "report", "total"]
    assert info.value.partial.status == "failed"
    assert store.get_run("r1").status == "failed"
    calls.clear()
    fail.on = False
    result = await g.run("1 2 3", backend=backend, checkpoint=store, run_id="r1")
    assert calls == ["report"]  # the three finished nodes were restored, not re-run
    assert result.output == "numbers: 6"
    assert {n: r.restored for n, r in result.nodes.items()} == {"parse": 1, "describe": 1, "total": 1, "report": 0}
    assert result.tokens.completion_tokens == result.nodes["describe"].tokens.completion_tokens > 0
    restored = [e for e in result.events if getattr(e, "restored", False)]
    assert sorted(e.node for e in restored) == ["describe", "parse", "total"]
    assert store.get_run("r1").status == "ok"


async def test_resume_without_input_reuses_the_recorded_one(store):
    calls, fail = [], Flag()
    g = pipeline(calls, fail)
    with pytest.raises(NodeFailedError):
        await g.run("4 5", backend=ScriptedBackend(["x"]), checkpoint=store, run_id="r")
    fail.on = False
    result = await g.run(backend=ScriptedBackend([]), checkpoint=store, run_id="r")
    assert result.output == "x: 9"


async def test_a_different_input_or_graph_is_refused(store):
    calls, fail = [], Flag(False)
    await pipeline(calls, fail).run("1", backend=ScriptedBackend(["a"]), checkpoint=store, run_id="r")
    with pytest.raises(CheckpointMismatchError, match="different input"):
        await pipeline(calls, fail).run("2", backend=ScriptedBackend(["a"]), checkpoint=store, run_id="r")
    other = Graph("pipeline")

    @other.node
    def parse(text: str) -> list[str]:  # same name, different output type
        return text.split()

    with pytest.raises(CheckpointMismatchError, match="different nodes, edges or types"):
        await other.run("1", checkpoint=store, run_id="r")


async def test_a_node_committed_with_other_inputs_runs_again(store):
    """A fallback value is not committed, so on resume the node runs again; what it feeds re-runs if it changed."""
    broken, seen = Flag(), []
    g = Graph("g")

    @g.node(fallback=0)
    def source(x: int) -> int:
        if broken.on:
            raise ConnectionError("service down")
        return x

    @g.node
    def middle(source: int) -> int:
        seen.append(source)
        return source * 2

    @g.node
    def sink(middle: int) -> int:
        if broken.on:
            raise RuntimeError("still broken")
        return middle

    g.chain(source, middle, sink)
    with pytest.raises(NodeFailedError):
        await g.run(5, checkpoint=store, run_id="r")
    broken.on = False
    result = await g.run(5, checkpoint=store, run_id="r")
    assert result.output == 10 and seen == [0, 5]
    assert result.nodes["middle"].restored == 0


async def test_loops_maps_routes_and_subgraphs_resume(store):
    ran: dict[str, int] = {}
    fail = Flag()

    def count(name):
        ran[name] = ran.get(name, 0) + 1

    inner = Graph("inner")

    @inner.node
    def double(y: int) -> int:
        count("double")
        return 2 * y

    g = Graph("g")

    @g.node
    def start(n: int) -> int:
        count("start")
        return n

    @g.node
    def step(start: int) -> Route[int]:
        count("step")
        return Route("step" if start < 3 else "items", start + 1)

    @g.node
    def items(step: int) -> list[int]:
        count("items")
        return list(range(step))

    @g.node
    def each(items: int) -> int:
        count("each")
        return items * 10

    @g.node
    def last(each: list[int]) -> int:
        count("last")
        if fail.on:
            raise RuntimeError("late failure")
        return sum(each)

    sub = g.add(inner, name="sub")
    g.edge(start, step)
    g.loop(step, back_to=step, exit=items, param="start", exit_param="step", max_iterations=5)
    g.map(items, each)
    g.edge(each, last)
    g.edge(last, sub, param="y")
    with pytest.raises(NodeFailedError):
        await g.run(0, checkpoint=store, run_id="r")
    first = dict(ran)
    assert first["step"] == 4 and first["each"] == 4
    fail.on = False
    ran.clear()
    result = await g.run(0, checkpoint=store, run_id="r")
    assert ran == {"last": 1, "double": 1}
    assert result.output == 2 * sum(10 * i for i in range(4))


async def test_retries_are_in_the_record_and_the_checkpoint(store):
    attempts = []
    g = Graph("g")

    @g.node(retry=RetryPolicy(attempts=3, backoff=0.0))
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return x

    result = await g.run(7, checkpoint=store, run_id="r")
    assert result.nodes["flaky"].retries == 2
    assert store.load_nodes("r")["flaky#0"].attempts == 3


async def test_fan_out_samples_stay_distinct_and_replay_without_a_model(tmp_path):
    """k identical requests at temperature > 0 are k recorded samples (the sample index is in the key)."""
    counter = iter(range(1000))
    backend = FunctionBackend(lambda r: f"sample-{next(counter)}")
    tool_calls = []
    g = Graph("vote")

    @g.node
    async def fan(q: str, ctx: RunContext) -> list[str]:
        req = Request(prompt=q, params=SamplingParams(temperature=0.9, max_tokens=4))
        many = await ctx.generate([req] * 3)
        one_request = await ctx.generate(req.model_copy(update={"params": req.params.model_copy(update={"n": 2})}))
        looked_up = await ctx.remember("tool", "lookup:q", lambda: _tool(tool_calls))
        return [c.text for c in many] + [s.text for s in one_request.samples] + [looked_up]

    path = tmp_path / "runs.db"
    first = await g.run("q", backend=backend, checkpoint=path, run_id="r")
    texts = first.output
    assert len(set(texts[:5])) == 5, texts
    assert tool_calls == [1]
    replayed = await g.run("q", checkpoint=path, run_id="r", replay=True)  # no backend at all
    assert replayed.output == texts and tool_calls == [1]
    assert replayed.nodes["fan"].restored == 0  # replay re-runs the node code
    again = await g.run("q", backend=backend, checkpoint=path, run_id="other")
    assert again.output[:5] == texts[:5]  # the response cache serves the same samples to a new run
    assert tool_calls == [1, 1]  # tool results are per run


async def _tool(calls):
    calls.append(1)
    return "found"


async def test_replay_of_a_changed_prompt_says_what_is_missing(tmp_path):
    g = Graph("g")
    prompt = Flag()

    @g.node
    async def ask(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q if prompt.on else q + "!"))).text

    path = tmp_path / "runs.db"
    await g.run("hi", backend=ScriptedBackend(["hello"]), checkpoint=path, run_id="r")
    prompt.on = False
    with pytest.raises(NodeFailedError) as info:
        await g.run("hi", checkpoint=path, run_id="r", replay=True)
    assert isinstance(info.value.cause, ReplayMissError)
    assert "no recorded response" in str(info.value.cause) and "'ask'" in str(info.value.cause)


async def test_replay_and_run_id_need_a_checkpoint(tmp_path):
    g = Graph("g")

    @g.node
    def a(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="need checkpoint"):
        await g.run(1, run_id="r")
    with pytest.raises(ValueError, match="run_id"):
        await g.run(1, checkpoint=tmp_path / "c.db", replay=True)
    from plait import CheckpointError

    with pytest.raises(CheckpointError, match="nothing to replay"):
        await g.run(1, checkpoint=tmp_path / "c.db", run_id="nope", replay=True)


async def test_an_output_json_cannot_hold_is_an_error_naming_the_node_and_type(store):
    g = Graph("g")

    @g.node
    def make_lock(x: int) -> object:
        return threading.Lock()

    @g.node
    def use(make_lock: object) -> str:
        return type(make_lock).__name__

    g.chain(make_lock, use)
    with pytest.raises(NodeFailedError) as info:
        await g.run(1, checkpoint=store, run_id="r")
    assert isinstance(info.value.cause, CheckpointError)
    message = str(info.value)
    assert "'make_lock'" in message and "lock" in message and "durable=False" in message
    assert len(message.splitlines()) == 1
    assert store.load_nodes("r") == {}


async def test_a_node_with_durable_false_is_not_checkpointed_and_runs_again(store):
    g = Graph("g")
    ran = []

    @g.node(durable=False)
    def make_lock(x: int) -> object:
        ran.append(x)
        return threading.Lock()

    @g.node
    def use(make_lock: object) -> str:
        return type(make_lock).__name__

    g.chain(make_lock, use)
    result = await g.run(1, checkpoint=store, run_id="r")
    assert result.output == "lock"
    await g.run(1, checkpoint=store, run_id="r")
    assert ran == [1, 1]  # not restorable, so it ran again
    assert store.load_nodes("r") == {}  # neither it nor `use` (fed by it) was committed


async def test_outputs_load_back_with_their_declared_type_and_a_wrong_one_is_refused(store):
    g = Graph("g")
    ran = []

    @g.node
    def pair(x: int) -> tuple[int, int]:
        ran.append(x)
        return (x, x + 1)

    @g.node
    def loose(pair: tuple[int, int]):  # no annotation: comes back as JSON
        return pair

    @g.node
    def wrong(loose: list[int]) -> int:
        return "not a number" if fail.on else 1  # type: ignore[return-value]

    fail = Flag()
    g.chain(pair, loose, wrong)
    with pytest.raises(NodeFailedError, match=r"node 'wrong' .* str, which does not load back .* int"):
        await g.run(1, checkpoint=store, run_id="r")
    fail.on = False
    result = await g.run(1, checkpoint=store, run_id="r")
    assert ran == [1] and result.output == 1
    assert result.nodes["pair"].restored == result.nodes["loose"].restored == 1
    assert type(result.nodes["pair"].output) is tuple and result.nodes["pair"].output == (1, 2)
    assert result.nodes["loose"].output == [1, 2]  # typed Any: plain JSON


async def test_a_run_deleted_from_the_store_while_it_runs_is_a_clear_error(store):
    g = Graph("vanishing")

    @g.node
    def work(x: int) -> int:
        store.delete_run("r1")  # what another worker's force=True would do
        return x

    with pytest.raises(CheckpointError, match="run 'r1' was deleted from the checkpoint while it ran"):
        await g.run(1, checkpoint=store, run_id="r1")

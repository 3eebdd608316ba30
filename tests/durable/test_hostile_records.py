"""A checkpoint's records are data: crafted, truncated or foreign ones never run code and give a one-line error."""

import pickle

import pytest

from plait import CheckpointError, Graph, MemoryCheckpointer, NodeFailedError, Request, RunContext, ScriptedBackend

pytestmark = pytest.mark.anyio


class Evil:
    """Unpickling this creates a marker file: proof that a record was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def graph(fail: list[bool]) -> Graph:
    g = Graph("g")

    @g.node
    async def ask(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q))).text

    @g.node
    def count(ask: str) -> int:
        return len(ask)

    @g.node
    def last(count: int) -> int:
        if fail[0]:
            raise RuntimeError("later failure")
        return count

    g.chain(ask, count, last)
    return g


async def _recorded(store) -> Graph:
    fail = [True]
    g = graph(fail)
    with pytest.raises(NodeFailedError):
        await g.run("hi", backend=ScriptedBackend(["hello"]), checkpoint=store, run_id="r")
    fail[0] = False
    return g


def _crafted(tmp_path):
    marker = tmp_path / "pwned"
    return marker, [
        pickle.dumps(Evil(marker)),                           # a pickle that runs code when loaded
        b'{"value": "five"}',                                 # the wrong type for -> int
        b'{"value": 5, "extra": {"__class__": "os.system"}}',  # unexpected keys
        b'[5]',                                               # not an object
        b'{"value": 5',                                       # truncated
        b'[' * 100_000 + b']' * 100_000,                      # nested past any parser's depth
        b'\xff\xfe garbage',                                  # not UTF-8
    ]


@pytest.mark.parametrize("index", range(7))
async def test_a_crafted_node_record_is_a_one_line_checkpoint_error(index, tmp_path):
    store = MemoryCheckpointer()
    g = await _recorded(store)
    marker, crafted = _crafted(tmp_path)
    node = store.nodes["r"]["count#0"]
    node.outcome = crafted[index]
    with pytest.raises(NodeFailedError) as info:
        await g.run("hi", backend=ScriptedBackend([]), checkpoint=store, run_id="r")
    assert isinstance(info.value.cause, CheckpointError)
    message = str(info.value)
    assert "output of node 'count'" in message and len(message.splitlines()) == 1, message
    assert not marker.exists()


@pytest.mark.parametrize("index", range(7))
async def test_a_crafted_sample_record_is_a_one_line_checkpoint_error(index, tmp_path):
    store = MemoryCheckpointer()
    await _recorded(store)
    marker, crafted = _crafted(tmp_path)
    (key,) = [k for k in store.records if k.startswith("llm:")]
    store.records[key] = crafted[index]
    with pytest.raises(NodeFailedError) as info:
        await graph([False]).run(checkpoint=store, run_id="r", replay=True)
    assert isinstance(info.value.cause, CheckpointError)
    message = str(info.value)
    assert "recorded response for node 'ask'" in message and len(message.splitlines()) == 1, message
    assert not marker.exists()


@pytest.mark.parametrize("index", range(7))
async def test_a_crafted_run_input_is_a_one_line_checkpoint_error(index, tmp_path):
    store = MemoryCheckpointer()
    g = await _recorded(store)
    marker, crafted = _crafted(tmp_path)
    store.runs["r"].input = crafted[index] if index != 1 else b'{"q": 5}'
    with pytest.raises(CheckpointError) as info:
        await g.run(backend=ScriptedBackend([]), checkpoint=store, run_id="r")  # input: the recorded one
    message = str(info.value)
    assert "recorded input of run 'r'" in message and len(message.splitlines()) == 1, message
    assert not marker.exists()


@pytest.mark.parametrize("index", range(7))
async def test_crafted_capabilities_and_tool_records_are_one_line_checkpoint_errors(index, tmp_path):
    store = MemoryCheckpointer()
    g = Graph("tools")

    @g.node
    async def look(q: str, ctx: RunContext) -> int:
        found = await ctx.remember("tool", f"lookup:{q}", _lookup, returns=int)
        return found + len((await ctx.generate(Request(prompt=q))).text)

    await g.run("hi", backend=ScriptedBackend(["hello"]), checkpoint=store, run_id="r")
    marker, crafted = _crafted(tmp_path)
    (tool_key,) = [k for k in store.records if k.startswith("tool:")]
    store.records[tool_key] = crafted[index]
    with pytest.raises(NodeFailedError, match="recorded tool result for 'lookup:hi'") as info:
        await g.run(checkpoint=store, run_id="r", replay=True)
    assert len(str(info.value).splitlines()) == 1
    (caps_key,) = [k for k in store.records if k.startswith("backend:")]
    store.records[caps_key] = crafted[index] if index != 1 else b'{"supports_streaming": "maybe"}'
    with pytest.raises(CheckpointError, match="capabilities of the backend") as info:
        await g.run(checkpoint=store, run_id="r", replay=True)
    assert len(str(info.value).splitlines()) == 1
    assert not marker.exists()


async def _lookup():
    return 3

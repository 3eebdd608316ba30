"""Recorded samples are keyed by Backend.identity: servers that may answer differently never share samples."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from plait import Graph, MemoryCheckpointer, OpenAIBackend, Request, RunContext, ScriptedBackend
from plait.executors import FlakyBackend

pytestmark = pytest.mark.anyio


def _server(answer: str) -> ThreadingHTTPServer:
    """A real OpenAI-compatible HTTP server on a free port that lists model 'default' and always says ``answer``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self._send({"object": "list", "data": [{"id": "default", "object": "model"}]})

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self._send({"id": "x", "object": "text_completion", "model": "default",
                        "choices": [{"index": 0, "text": answer, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})

        def _send(self, data):
            payload = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers():
    started = [_server("from A"), _server("from B")]
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in started]
    for s in started:
        s.shutdown()
        s.server_close()


def _graph() -> Graph:
    g = Graph("ask")

    @g.node
    async def ask(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q))).text

    return g


async def test_two_servers_without_model_do_not_share_samples(servers):
    store, g = MemoryCheckpointer(), _graph()
    answers = []
    for i, url in enumerate(servers):
        async with OpenAIBackend(url, timeout=10) as backend:
            answers.append((await g.run("hi", backend=backend, checkpoint=store, run_id=f"r{i}")).output)
    assert answers == ["from A", "from B"]
    assert store.get_run("r0").model != store.get_run("r1").model
    assert servers[0] + "/v1" in store.get_run("r0").model


async def test_the_identity_is_known_before_the_first_request_and_does_not_change(servers):
    backend = OpenAIBackend(servers[0])
    before = backend.identity
    async with backend:
        assert backend.model == "default"  # discovered from the server
        assert backend.identity == before
    assert OpenAIBackend(servers[0], model="m").identity == OpenAIBackend(servers[1], model="m").identity == "m"


async def test_wrappers_and_doubles_declare_their_identity():
    assert ScriptedBackend([], model="tiny").identity == "tiny"
    assert FlakyBackend(ScriptedBackend([], model="tiny")).identity == "tiny"
    assert OpenAIBackend("http://h:1").identity != OpenAIBackend("http://h:2").identity


def _named_graph() -> Graph:
    g = Graph("ask_named")

    @g.node(model="m")
    async def ask(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q))).text

    @g.node(model="other")
    async def again(ask: str, q: str, ctx: RunContext) -> str:
        return ask + " / " + (await ctx.generate(Request(prompt=q))).text

    g.chain(ask, again)
    return g


async def test_every_named_backend_is_keyed_by_its_own_identity(servers):
    """Two runs whose backend 'm' is a different server never share 'm's samples; each name keeps its server."""
    store, g = MemoryCheckpointer(), _named_graph()
    answers = []
    for i, (url, other) in enumerate([servers, servers[::-1]]):
        async with OpenAIBackend(url, timeout=10) as m, OpenAIBackend(other, timeout=10) as o:
            answers.append((await g.run("hi", backends={"m": m, "other": o}, checkpoint=store,
                                        run_id=f"r{i}")).output)
    assert answers == ["from A / from B", "from B / from A"]
    first = store.get_run("r0").model
    assert servers[0] + "/v1" in first.split('"other"')[0] and servers[1] + "/v1" in first.split('"other"')[1]
    replayed = await g.run(None, checkpoint=store, run_id="r1", replay=True)
    assert replayed.output == "from B / from A"

"""Bad input to the real backends: long prompts, invalid constraints, dead servers, unknown models."""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import pytest

from plait import BackendError, Graph, JsonSchema, Request, RunContext, SamplingParams
from plait.errors import ModelError
from plait.executors import Regex
from plait.executors import OpenAIBackend, VLLMBackend, backend_for
MODEL = "smollm2-135m"  # as in conftest.py
MAX_MODEL_LEN = 2048

pytestmark = pytest.mark.timeout(900)  # includes starting the session engine or server

TOO_LONG = "word " * (MAX_MODEL_LEN + 100)
BAD_SCHEMA = JsonSchema(schema={"type": "no-such-type"})


def _dead_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_prompt_longer_than_context_fails_its_branch_only(vllm_engine):
    graph = Graph("long_prompt")

    @graph.node(on_error="skip")
    async def too_long(question: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=TOO_LONG + question))).text

    @graph.node
    async def fine(question: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=question, params=SamplingParams(max_tokens=4)))).text

    async def main():
        async with vllm_engine() as backend:
            return await graph.run({"question": "Why?"}, backend=backend)

    result = anyio.run(main)
    assert result.nodes["too_long"].status == "failed"
    assert "context window of 2048 tokens" in result.nodes["too_long"].error
    assert result.nodes["fine"].status == "ok"
    assert result.nodes["fine"].tokens.completion_tokens >= 1


def test_prompt_longer_than_context_over_http(vllm_server):
    async def main():
        async with OpenAIBackend(vllm_server, MODEL) as backend:
            with pytest.raises(BackendError, match="HTTP 400.*(context|length)"):
                await backend.generate([Request(prompt=TOO_LONG)])

    anyio.run(main)


def test_invalid_schema_is_refused_before_the_engine_starts():
    backend = VLLMBackend("tiny-random")  # never started: the check must not need the engine

    async def main():
        good = Request(prompt="ok", params=SamplingParams(max_tokens=2))
        bad = Request(prompt="x", params=SamplingParams(constraint=BAD_SCHEMA), tag="extract")
        with pytest.raises(BackendError, match=r"request 1 \(extract\): invalid JsonSchema.*no-such-type"):
            await backend.generate([good, bad])

    anyio.run(main)
    assert backend._shared is None  # nothing was started, so nothing was sent


def test_invalid_constraint_over_http_is_refused_before_sending():
    url = f"http://127.0.0.1:{_dead_port()}"  # a request would fail with a connection error instead

    async def main():
        async with OpenAIBackend(url, "m", max_retries=0) as backend:
            with pytest.raises(BackendError, match="invalid Regex constraint"):
                await backend.generate([Request(prompt="x", params=SamplingParams(constraint=Regex(pattern="a(b")))])

    anyio.run(main)


def test_dead_server_gives_backend_error_naming_the_url_after_retries():
    url = f"http://127.0.0.1:{_dead_port()}"

    async def main():
        backend = OpenAIBackend(url, "m", max_retries=2, backoff=0.05)
        async with backend:
            with anyio.fail_after(30):  # bounded: never a hang
                with pytest.raises(BackendError, match=rf"{url}/v1/completions failed after 3 attempt"):
                    await backend.generate([Request(prompt="hello")])

    anyio.run(main)


def test_server_retries_503_then_succeeds():
    """A flaky server (two 503s, then an answer) is retried transparently."""
    answers = iter([503, 503, 200])
    body = b'{"choices":[{"index":0,"text":"ok","finish_reason":"stop","token_ids":[1]}],"usage":{"prompt_tokens":1}}'

    async def handle(stream):
        async with stream:
            await stream.receive(65536)
            status = next(answers)
            payload = body if status == 200 else b'{"error":{"message":"busy"}}'
            head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
            await stream.send(head.encode() + b"connection: close\r\n\r\n" + payload)

    async def main():
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            async with OpenAIBackend(f"http://127.0.0.1:{port}", "m", max_retries=3, backoff=0.01) as backend:
                (c,) = await backend.generate([Request(prompt="hi")])
            tg.cancel_scope.cancel()
        return c

    completion = anyio.run(main)
    assert completion.text == "ok"
    assert completion.completion_tokens == 1


def test_backend_for_picks_the_backend_and_rejects_unknown_names():
    assert isinstance(backend_for("http://127.0.0.1:8000"), OpenAIBackend)
    assert isinstance(backend_for("smollm2-135m"), VLLMBackend)
    with pytest.raises(ModelError, match="unknown model 'gpt-17'.*smollm2-135m.*tiny-random"):
        backend_for("gpt-17")


def test_cancelling_a_generate_call_aborts_its_engine_requests(vllm_engine):
    endless = Request(prompt="Digits:", params=SamplingParams(max_tokens=1500, constraint=Regex(pattern="[0-9]{1500}")))

    async def main():
        async with vllm_engine() as backend:
            engine = backend._shared.engine
            with anyio.move_on_after(1.0):
                await backend.generate([endless, endless])
            with anyio.fail_after(30):
                while engine.get_num_unfinished_requests():
                    await anyio.sleep(0.1)

    anyio.run(main)

"""The HTTP backend against hostile servers: real TCP servers on 127.0.0.1 that answer with raw bytes.

Each case is a reply script (trickle bytes, stream forever, send garbage,
lie about sizes, counts or token usage). Every one must end in a one-line
BackendError naming the URL and the fault, well within the request's
deadline, leaving no thread or task behind.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from plait import BackendError, Message, Request, SamplingParams
from plait.executors import OpenAIBackend

pytestmark = pytest.mark.timeout(60)

Reply = Callable[[anyio.abc.ByteStream, int], Awaitable[None]]
TEXT = Request(prompt="hi", params=SamplingParams(max_tokens=4))
CHAT = Request(prompt=(Message(role="user", content="hi"),), params=SamplingParams(max_tokens=4))
OK = json.dumps({"choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()


def head(status: int = 200, length: int | None = None, **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "connection: close"]
    lines += [f"content-length: {length}"] if length is not None else []
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(body: bytes, status: int = 200, **headers: str) -> Reply:
    async def reply(stream, _):
        await stream.send(head(status, len(body), **headers) + body)
    return reply


def events(*payloads: str, done: bool = False) -> bytes:
    return b"".join(f"data: {p}\n\n".encode() for p in payloads) + (b"data: [DONE]\n\n" if done else b"")


def sse(body: bytes) -> Reply:
    """A complete event stream (chunked, properly terminated): the server ends it cleanly."""
    async def reply(stream, _):
        await stream.send(head(transfer_encoding="chunked", content_type="text/event-stream")
                          + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    return reply


def trickle(prefix: bytes, piece: bytes, every: float, then: bytes = b"") -> Reply:
    """Send ``prefix``, then ``piece`` every ``every`` seconds (bounded: 400 times at most)."""
    async def reply(stream, _):
        await stream.send(prefix)
        for _ in range(400):
            await anyio.sleep(every)
            await stream.send(piece)
        await stream.send(then)
    return reply


def flood(prefix: bytes, piece: bytes, total: int) -> Reply:
    """Send ``prefix``, then ``piece`` as fast as the client reads, up to ``total`` bytes, then stall."""
    async def reply(stream, _):
        await stream.send(prefix)
        for _ in range(total // len(piece)):
            await stream.send(piece)
        await anyio.sleep(30)
    return reply


def chunk(index: int = 0, text: str = "a") -> str:
    return json.dumps({"choices": [{"index": index, "text": text, "finish_reason": None}]})


@asynccontextmanager
async def hostile_server(reply: Reply):
    """A TCP server on 127.0.0.1 answering every HTTP request with ``reply``; yields (url, arrival times)."""
    arrivals: list[float] = []

    async def handle(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            received = b""
            try:
                while b"\r\n\r\n" not in received:
                    received += await stream.receive()
                headers, _, body = received.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in headers.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += await stream.receive()
                arrivals.append(time.monotonic())
                await reply(stream, len(arrivals))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
                pass  # the client hung up: what it should do with a hostile server

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}", arrivals
        tg.cancel_scope.cancel()


def run_against(reply: Reply, request: Request = TEXT, *, model: str | None = "m", **options):
    """Serve one request from a hostile server; (result or BackendError, url, seconds, arrivals).

    The request must end within 3x its timeout (a hang fails the test), no
    task may outlive it, and once the loop is closed no thread either.
    """
    threads_before = set(threading.enumerate())
    bound = 3 * options.get("timeout", 10)

    async def main():
        async with hostile_server(reply) as (url, arrivals):
            started = time.monotonic()
            with anyio.fail_after(bound):
                try:
                    async with OpenAIBackend(url, model, **options) as backend:
                        outcome = (await backend.generate([request]))[0]
                except BackendError as exc:
                    outcome = exc
            seconds = time.monotonic() - started
        assert asyncio.all_tasks() == {asyncio.current_task()}, "tasks left behind"
        return outcome, f"{url}/v1", seconds, arrivals

    result = anyio.run(main)
    assert set(threading.enumerate()) <= threads_before, "threads left behind"
    return result


def fails_with(reply: Reply, fault: str, request: Request = TEXT, **options) -> str:
    """Run ``reply`` and check the outcome: a one-line BackendError naming the URL and matching ``fault``."""
    outcome, url, seconds, _ = run_against(reply, request, **options)
    assert isinstance(outcome, BackendError), f"accepted a hostile reply: {outcome!r}"
    message = str(outcome)
    assert message.startswith(url), message
    assert re.search(fault, message), message
    assert "\n" not in message, message
    assert seconds < 3 * options.get("timeout", 10)
    return message


# --- deadlines: a total deadline per request, an idle limit between pieces ---------------------------------

def test_slow_loris_body_ends_at_the_total_deadline():
    fails_with(trickle(head(length=len(OK)), b" ", every=0.2), r"within timeout=1s \(a total deadline", timeout=1)


def test_slow_loris_headers_end_at_the_total_deadline():
    fails_with(trickle(b"HTTP/1.1 200 OK\r\n", b"x-a: b\r\n", every=0.2), r"within timeout=1s", timeout=1)


def test_endless_event_stream_ends_at_the_total_deadline():
    stream = trickle(head(content_type="text/event-stream"), events(chunk()), every=0.05)
    fails_with(stream, r"within timeout=1s", timeout=1, stream=True)


def test_keep_alive_only_stream_ends_at_the_idle_limit():
    stream = trickle(head(content_type="text/event-stream"), b": keep-alive\n\n", every=0.05)
    fails_with(stream, r"sent no event for 0.5s \(idle_timeout; keep-alive comments do not count\)",
               timeout=5, idle_timeout=0.5, stream=True)


def test_body_that_stops_midway_ends_at_the_idle_limit():
    fails_with(trickle(head(length=len(OK)) + OK[:10], b"", every=3), r"stopped sending its reply for 0.5s",
               timeout=5, idle_timeout=0.5)


# --- malformed replies: each a BackendError naming the URL and what was wrong ------------------------------

def reply_with(choices: list, **extra) -> bytes:
    return json.dumps({"choices": choices, **extra}).encode()


@pytest.mark.parametrize("body, fault, request_", [
    (b'{"choices": [{"index": 0, "te', r"sent reply that is not JSON \(EOF", TEXT),
    (b"<html>\n<head><title>502 Bad Gateway</title></head>\n</html>", r"not JSON .*'<html> <head><title>502", TEXT),
    (b"[1, 2]", r"malformed reply: top level: Input should be an object", TEXT),
    (reply_with([{"index": 0, "message": None}]), r"choices\[0\]\.message is missing or null", CHAT),
    (reply_with([{"index": 0, "message": "hi"}]), r"choices\.0\.message: .*got 'hi'", CHAT),
    (reply_with([]), r"returned 0 choice\(s\) for n=1", TEXT),
    (b'{"choices": [{"index": 0, "text": "caf\xe9"}]}', r"not UTF-8 \(byte 0xe9 at offset", TEXT),
    (b'{"choices": [{"index": 0, "text": 7}]}', r"choices\.0\.text: Input should be a valid string", TEXT),
    (b'{"choices": ' + b"[" * 5000 + b"]" * 5000 + b"}", r"not JSON \(recursion limit", TEXT),
    (reply_with([{"index": 0, "text": "x", "logprobs": {"tokens": ["x"], "token_logprobs": [float("nan")]}}]),
     r"token_logprobs\.0: Input should be a finite number", TEXT),
    (b'{"error": {"message": "model overloaded"}}', r"reported an error: model overloaded", TEXT),
], ids=["invalid-json", "html-page", "json-array", "message-null", "message-string", "no-choices", "bad-utf8",
        "text-not-string", "deep-nesting", "nan-logprob", "error-with-200"])
def test_malformed_reply_is_a_backend_error(body, fault, request_):
    fails_with(answer(body), fault, request_, timeout=5)


@pytest.mark.parametrize("usage, fault", [
    ({"prompt_tokens": -5}, r"usage\.prompt_tokens: Input should be greater than or equal to 0"),
    ({"prompt_tokens": 3.5}, r"usage\.prompt_tokens: Input should be a valid integer"),
    ({"prompt_tokens": "12"}, r"usage\.prompt_tokens: Input should be a valid integer"),
    ({"completion_tokens": True}, r"usage\.completion_tokens: Input should be a valid integer"),
    ({"prompt_tokens": 10**30}, r"usage\.prompt_tokens: Input should be less than or equal to"),
    ({"prompt_tokens": 2, "prompt_tokens_details": {"cached_tokens": 50}}, r"50 cached tokens of a 2-token prompt"),
], ids=["negative", "float", "string", "bool", "huge", "cached-over-prompt"])
def test_absurd_token_counts_are_refused(usage, fault):
    fails_with(answer(reply_with([{"index": 0, "text": "x"}], usage=usage)), fault, timeout=5)


@pytest.mark.parametrize("indices, fault", [
    ([0], r"returned 1 choice\(s\) for n=4"),
    ([0, 0, 1, 2], r"indices \[0, 0, 1, 2\] for n=4 \(expected each of 0\.\.3 once\)"),
    ([0, 1, 2, 7], r"indices \[0, 1, 2, 7\] for n=4"),
], ids=["too-few", "duplicate", "out-of-range"])
def test_wrong_sample_count_or_indices_are_refused(indices, fault):
    request = Request(prompt="hi", params=SamplingParams(n=4, temperature=1.0, max_tokens=4))
    fails_with(answer(reply_with([{"index": i, "text": "x"} for i in indices])), fault, request, timeout=5)


def test_error_page_is_quoted_on_one_line():
    page = b"<html>\n<body>\n<h1>Forbidden</h1>\n</body>\n</html>\n" + b"x" * 100_000
    fails_with(answer(page, status=403), r"refused the request: HTTP 403: <html> <body> <h1>Forbidden", timeout=5)


def test_compressed_body_is_refused_rather_than_inflated():
    fails_with(answer(b"\x1f\x8b" + b"\0" * 64, content_encoding="gzip"), r"'gzip'-encoded body", timeout=5)


def test_model_list_that_is_not_json_is_a_backend_error():
    message = fails_with(answer(b"<html>login</html>"), r"/models sent model list that is not JSON",
                         model=None, timeout=5)
    assert "/v1/models" in message

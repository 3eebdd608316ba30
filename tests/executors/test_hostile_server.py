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


def sse(body: bytes, piece: int = 7) -> Reply:
    """A complete event stream, sent in HTTP chunks of ``piece`` bytes (lines and CRLFs split anywhere)."""
    async def reply(stream, _):
        await stream.send(head(transfer_encoding="chunked", content_type="text/event-stream"))
        for start in range(0, len(body), piece):
            part = body[start:start + piece]
            await stream.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        await stream.send(b"0\r\n\r\n")  # the stream ends cleanly
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
        for _ in range(20):  # httpx's abandoned body iterators are closed by finalizer tasks: let them run
            if asyncio.all_tasks() == {asyncio.current_task()}:
                break
            await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}, f"tasks left behind: {asyncio.all_tasks()}"
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
    (b'{"choices": [{"index": 0, "te', r"sent a reply that is not JSON \(EOF", TEXT),
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
    (reply_with([{"index": 0, "text": "x", "logprobs": {"tokens": ["x", "y"], "token_logprobs": [-1e308, -1e308]}}]),
     r"logprobs that sum to infinity", TEXT),
    (b'{"error": {"message": "model overloaded"}}', r"reported an error: model overloaded", TEXT),
], ids=["invalid-json", "html-page", "json-array", "message-null", "message-string", "no-choices", "bad-utf8",
        "text-not-string", "deep-nesting", "nan-logprob", "infinite-logprob-sum", "error-with-200"])
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


def test_redirect_is_not_followed():
    fails_with(answer(b"", status=307, location="http://198.51.100.7/steal"),
               r"redirected the request \(HTTP 307\) to http://198\.51\.100\.7/steal; pass the final URL", timeout=5)


def test_compressed_body_is_refused_rather_than_inflated():
    fails_with(answer(b"\x1f\x8b" + b"\0" * 64, content_encoding="gzip"), r"'gzip'-encoded body", timeout=5)


def test_model_list_that_is_not_json_is_a_backend_error():
    message = fails_with(answer(b"<html>login</html>"), r"/models sent a model list that is not JSON",
                         model=None, timeout=5)
    assert "/v1/models" in message


# --- streams: cut short, wrong choices -----------------------------------------------------------------------

@pytest.mark.parametrize("body, fault, n", [
    (events(chunk(), chunk()), r"ended its event stream after 2 event\(s\) without \[DONE\]", 1),
    (events(chunk(0), chunk(5), done=True), r"streamed choice index 5 for n=2", 2),
    (events(chunk(0), done=True), r"returned 1 choice\(s\) for n=2", 2),
    (events(chunk(), "{not json", done=True), r"sent a stream event that is not JSON", 1),
    (events(json.dumps({"error": {"message": "engine died\nTraceback:\n  oom"}})),
     r"failed mid-stream: engine died Traceback: oom$", 1),
], ids=["no-done", "index-beyond-n", "missing-choice", "invalid-event", "error-event"])
def test_bad_stream_is_a_backend_error(body, fault, n):
    request = Request(prompt="hi", params=SamplingParams(n=n, temperature=1.0, max_tokens=4))
    fails_with(sse(body), fault, request, timeout=5, stream=True)


def test_stream_events_are_parsed_as_server_sent_events():
    """Keep-alive comments, CRLF line ends and an event whose data spans two lines are all valid SSE."""
    split = chunk(0, "c").replace('"choices": ', '"choices":\r\ndata: ')
    body = (b": keep-alive\r\n\r\n" + events(chunk(0, "a"), chunk(1, "b")).replace(b"\n", b"\r\n")
            + events(split, json.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}),
                     done=True))
    request = Request(prompt="hi", params=SamplingParams(n=2, temperature=1.0, max_tokens=4))
    completion, *_ = run_against(sse(body), request, timeout=5, stream=True)
    assert [s.text for s in completion.samples] == ["ac", "b"]
    assert completion.prompt_tokens == 3 and completion.completion_tokens == 4


def test_steady_stream_slower_than_keep_alives_but_within_the_idle_limit_completes():
    async def reply(stream, _):
        await stream.send(head(content_type="text/event-stream"))
        for i in range(8):  # an event every 0.3 s, keep-alives between; 2.4 s in all, past the idle limit
            await stream.send(b": keep-alive\n\n")
            await anyio.sleep(0.15)
            await stream.send(b": keep-alive\n\n")
            await anyio.sleep(0.15)
            await stream.send(events(chunk(0, str(i))))
        await stream.send(events(done=True))

    completion, *_ = run_against(reply, timeout=10, idle_timeout=1.5, stream=True)
    assert completion.text == "01234567"


# --- size: counted as it streams in, never read whole first --------------------------------------------------

MiB = 2**20


def test_announced_huge_body_is_refused_before_reading():
    reply = trickle(head(length=200 * MiB), b"", every=3)  # announces 200 MB, then sends nothing
    fails_with(reply, r"more than 1048576 bytes \(announced 209715200 bytes\)", timeout=5, max_response_bytes=MiB)


@pytest.mark.parametrize("prefix", [head(), head(transfer_encoding="chunked")], ids=["until-close", "chunked"])
def test_endless_body_stops_at_the_size_cap(prefix):
    # 4 MiB then a stall: a client that read the body whole would wait for the deadline, not see the size
    piece = (b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n") if b"chunked" in prefix else b"x" * 65536
    fails_with(flood(prefix, piece, 4 * MiB), r"more than 1048576 bytes \(\d+ bytes read so far\)",
               timeout=10, max_response_bytes=MiB)


@pytest.mark.parametrize("piece", [events(chunk(0, "y" * 60_000)), b"data: " + b"z" * 65536],
                         ids=["many-events", "one-endless-line"])
def test_endless_stream_stops_at_the_size_cap(piece):
    fails_with(flood(head(content_type="text/event-stream"), piece, 4 * MiB),
               r"more than 1048576 bytes \(\d+ bytes of stream read so far\)",
               timeout=10, max_response_bytes=MiB, stream=True)


# --- Retry-After: honoured, capped, and within the deadline --------------------------------------------------

def busy_then_ok(retry_after: str, status: int = 429) -> Reply:
    async def reply(stream, arrival):
        if arrival == 1:
            await answer(b'{"error": {"message": "slow down"}}', status=status, retry_after=retry_after)(stream, 1)
        else:
            await answer(OK)(stream, arrival)
    return reply


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize("retry_after, least", [("1", 0.9), ("1.5", 1.4), (None, 0.9)],
                         ids=["seconds", "decimal", "date"])
def test_retry_after_is_honoured(retry_after, least):
    header = retry_after or http_date(2.5)  # an HTTP date has whole seconds: the wait is 1.5 to 2.5 s
    completion, _, _, arrivals = run_against(busy_then_ok(header), timeout=10, backoff=0.01)
    assert completion.text == "ok"
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= least


def test_retry_after_is_capped():
    completion, _, _, arrivals = run_against(busy_then_ok("3600", status=503), timeout=10, backoff=0.01,
                                             max_retry_after=0.5)
    assert completion.text == "ok"
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.45


def test_retry_after_past_the_deadline_fails_at_once():
    message = fails_with(busy_then_ok("60"), r"failed after 1 attempt\(s\): HTTP 429: slow down; waiting 60s more "
                         r"would pass timeout=2s", timeout=2, max_retry_after=120)
    assert "slow down" in message


def test_unreadable_retry_after_falls_back_to_backoff():
    headers = ["-5", "soon", "1e309", "Mon, 99 Foo 2024 25:61:61 GMT", "1"]  # then one that is honoured

    async def reply(stream, arrival):
        if arrival <= len(headers):
            await answer(b"busy", status=429, retry_after=headers[arrival - 1])(stream, arrival)
        else:
            await answer(OK)(stream, arrival)

    completion, _, seconds, arrivals = run_against(reply, timeout=10, backoff=0.01, max_retries=5)
    assert completion.text == "ok" and len(arrivals) == 6
    assert arrivals[5] - arrivals[4] >= 0.9  # the readable "1" was waited for
    assert seconds < 10  # the unreadable ones were not taken as long waits


def test_bad_options_are_refused_naming_the_option():
    with pytest.raises(ValueError, match=r"OpenAIBackend: timeout=0 is not allowed; give a positive number"):
        OpenAIBackend("http://127.0.0.1:1", timeout=0)
    with pytest.raises(ValueError, match=r"max_response_bytes=-1 is not allowed"):
        OpenAIBackend("http://127.0.0.1:1", max_response_bytes=-1)

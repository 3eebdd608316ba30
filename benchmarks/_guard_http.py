"""Hostile-server attacks for ``benchmarks/guards.py``: ``OpenAIBackend`` against ``_hostile_server.py``.

Must hold (issue 19, item 6): ``timeout=`` is a total deadline per request, stream included; every malformed
reply is a ``BackendError`` that names the URL; ``Retry-After`` is honoured; a truncated stream or a wrong
sample count is an error; the response size is capped. Retries are off (``max_retries=0``) except for the
``Retry-After`` attack, so each attack measures one request.
"""

from __future__ import annotations

import contextlib
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

from plait import BackendError, Message, OpenAIBackend, Request, SamplingParams

SERVER = Path(__file__).with_name("_hostile_server.py")
TIMEOUT = 2.0


@contextlib.contextmanager
def _server(mode: str) -> Iterator[tuple[str, Path]]:
    """Start the hostile server in MODE; its base URL and the log of request arrival times."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "requests.log"
        proc = subprocess.Popen([sys.executable, str(SERVER), mode, str(log)], stdout=subprocess.PIPE, text=True)
        try:
            port = int(proc.stdout.readline())
            yield f"http://127.0.0.1:{port}", log
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()


def _ask(mode: str, *, n: int = 1, chat: bool = False, stream: bool = False, retries: int = 0,
         backoff: float = 0.1, timeout: float = TIMEOUT) -> tuple[Any, float, list[float]]:
    """One request to the server in MODE: (completion or the exception raised, seconds, request arrival times)."""
    prompt: Any = (Message(role="user", content="hi"),) if chat else "hi"
    request = Request(prompt=prompt, params=SamplingParams(max_tokens=4, n=n))
    with _server(mode) as (url, log):
        backend = OpenAIBackend(url, model="m", timeout=timeout, max_retries=retries, backoff=backoff,
                                stream=stream)

        async def go() -> Any:
            async with backend:
                return (await backend.generate([request]))[0]

        start = time.perf_counter()
        try:
            outcome: Any = anyio.run(go)
        except Exception as exc:  # noqa: BLE001 - judged below
            outcome = exc
        elapsed = time.perf_counter() - start
        arrivals = [float(t) for t in log.read_text().split()] if log.exists() else []
    return outcome, elapsed, arrivals


def _named(outcome: Any) -> bool:
    """A BackendError whose message names the server's URL."""
    return isinstance(outcome, BackendError) and "127.0.0.1" in str(outcome)


def _say(outcome: Any, elapsed: float) -> str:
    what = f"{type(outcome).__name__}: {str(outcome)[:100]}" if isinstance(outcome, BaseException) else "a reply"
    return f"{what} after {elapsed:.2f}s"


def _deadline(mode: str, **options: Any) -> tuple[bool, str]:
    outcome, elapsed, _ = _ask(mode, **options)
    return _named(outcome) and elapsed <= 2.5 * TIMEOUT, _say(outcome, elapsed) + f" (timeout {TIMEOUT:g}s)"


def _malformed(mode: str, **options: Any) -> tuple[bool, str]:
    outcome, elapsed, _ = _ask(mode, **options)
    return _named(outcome) and elapsed <= 2.5 * TIMEOUT, _say(outcome, elapsed)


def retry_after() -> tuple[bool, str]:
    """429 with ``Retry-After: 3``, then a good reply: the retry must wait about 3 s, then succeed.

    (The total deadline is 10 s here: under the usual 2 s one, a 3 s wait would pass it, and the request
    fails at once, as documented.)"""
    outcome, elapsed, arrivals = _ask("retry_after", retries=3, backoff=0.1, timeout=10.0)
    gap = arrivals[1] - arrivals[0] if len(arrivals) >= 2 else 0.0
    ok = not isinstance(outcome, BaseException)
    return ok and gap >= 2.9, f"{_say(outcome, elapsed)}; retried after {gap:.2f}s (Retry-After: 3)"


def huge_body() -> tuple[bool, str]:
    """A 200 MB body: refused past a size cap, without reading it into memory."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome, elapsed, _ = _ask("huge_body")
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return _named(outcome) and grown <= 100, f"{_say(outcome, elapsed)}; memory grew {grown:.0f} MB"


ATTACKS = {
    "http_slowloris": lambda: _deadline("slowloris"),
    "http_sse_endless": lambda: _deadline("sse_endless", stream=True),
    "http_sse_keepalive": lambda: _deadline("sse_keepalive", stream=True),
    "http_invalid_json": lambda: _malformed("invalid_json"),
    "http_html_page": lambda: _malformed("html"),
    "http_json_array": lambda: _malformed("json_array"),
    "http_null_message": lambda: _malformed("null_message", chat=True),
    "http_empty_choices": lambda: _malformed("empty_choices"),
    "http_bad_utf8": lambda: _malformed("bad_utf8"),
    "http_retry_after": retry_after,
    "http_truncated_stream": lambda: _malformed("truncated_stream", stream=True),
    "http_wrong_sample_count": lambda: _malformed("wrong_sample_count", n=4),
    "http_huge_body": huge_body,
}

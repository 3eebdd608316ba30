"""Bounded reading of an HTTP reply: the size cap, the idle limit, server-sent events, ``Retry-After``.

A server is untrusted: it may trickle bytes, stream forever, send keep-alive
comments only, or send a body of any size. Everything here reads a reply in
the pieces the network delivers, counts them against ``max_bytes`` as they
arrive (never reading a body whole first) and gives up when the next piece
does not come within the idle limit. The caller bounds the whole exchange
with its total deadline. Problems raise :class:`ReplyError`; the backend
adds the URL.
"""

from __future__ import annotations

import email.utils
import json
import re
import reprlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import anyio

__all__ = ["ReplyError", "read_body", "read_events", "retry_after_seconds", "error_text", "snippet"]

ERROR_BODY_BYTES = 16 * 1024  # enough of an error page to quote; the rest is not read


class ReplyError(Exception):
    """A reply that cannot be used; the message says what was wrong (the backend prefixes the URL)."""


class _Body:
    """A response body read chunk by chunk, each chunk awaited until a deadline; ``size`` counts what came."""

    def __init__(self, response: Any, *, encoded_ok: bool = False):
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity") and not encoded_ok:  # counting compressed bytes would not bound memory
            raise ReplyError(f"sent a {encoding!r}-encoded body although plait asks for identity encoding")
        self._raw = response.aiter_raw()
        self.size = 0

    async def next(self, deadline: float, idle_message: str) -> bytes | None:
        """The next chunk (None at the end of the body); ReplyError if none arrives before ``deadline``."""
        chunk = b""
        with anyio.CancelScope(deadline=deadline) as scope:
            try:
                chunk = await self._raw.__anext__()
            except StopAsyncIteration:
                return None
        if scope.cancelled_caught:
            raise ReplyError(idle_message)
        self.size += len(chunk)
        return chunk

    async def close(self) -> None:
        await self._raw.aclose()


def _over(size: int | str, max_bytes: int) -> ReplyError:
    return ReplyError(f"sent a reply of more than {max_bytes} bytes ({size}); raise max_response_bytes= "
                      "if the server's answers are really this large")


async def read_body(response: Any, *, max_bytes: int, idle_timeout: float, truncate: bool = False) -> bytes:
    """The whole body, at most ``max_bytes`` of it (ReplyError beyond, or cut there when ``truncate``).

    ``truncate`` reads the start of an error page, only to quote it: it is never decoded.
    """
    declared = response.headers.get("content-length", "")
    if not truncate and re.fullmatch(r"[0-9]{1,30}", declared) and int(declared) > max_bytes:
        raise _over(f"announced {declared} bytes", max_bytes)
    body, parts = _Body(response, encoded_ok=truncate), []
    idle = f"stopped sending its reply for {idle_timeout:g}s (idle_timeout)"
    try:
        while (chunk := await body.next(anyio.current_time() + idle_timeout, idle)) is not None:
            parts.append(chunk)
            if body.size > max_bytes:
                if truncate:
                    break
                raise _over(f"{body.size} bytes read so far", max_bytes)
    finally:
        await body.close()
    return b"".join(parts)[:max_bytes]


async def read_events(response: Any, on_data: Callable[[bytes], Awaitable[None]], *, max_bytes: int,
                      idle_timeout: float) -> None:
    """Hand each server-sent event's data to ``on_data`` until ``[DONE]``.

    A stream that ends before ``[DONE]`` was cut short (ReplyError). The idle
    limit runs from one data event to the next: comments (keep-alives) and
    other fields do not reset it, so a server sending only keep-alives stops.
    """
    body, buffer, events = _Body(response), bytearray(), 0
    data: list[bytearray] = []  # the data lines of the event being read
    idle = f"sent no event for {idle_timeout:g}s (idle_timeout; keep-alive comments do not count)"
    last_event = anyio.current_time()
    try:
        while True:
            chunk = await body.next(last_event + idle_timeout, idle)
            if chunk is None:
                raise ReplyError(f"ended its event stream after {events} event(s) without [DONE]: "
                                 "the reply was cut short")
            if body.size > max_bytes:
                raise _over(f"{body.size} bytes of stream read so far", max_bytes)
            buffer += chunk
            if b"\n" not in chunk:
                continue
            *lines, rest = buffer.split(b"\n")  # linear: the buffer only ever holds one unfinished line
            buffer = bytearray(rest)
            for line in lines:
                line = line.rstrip(b"\r")
                if line.startswith(b"data:"):
                    value = line[6:] if line.startswith(b"data: ") else line[5:]
                    if value.strip() == b"[DONE]" and not data:
                        return
                    data.append(value)
                elif not line and data:  # a blank line ends an event
                    events += 1
                    await on_data(b"\n".join(data))
                    data, last_event = [], anyio.current_time()
    finally:
        await body.close()


_SECONDS = re.compile(r"\d{1,9}(\.\d{1,6})?")


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def error_text(raw: bytes) -> str:
    """The error message of a server's error body (OpenAI's ``{"error": {"message": ...}}`` or text), one line."""
    text = raw.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", error) if isinstance(error, dict) else error
        text = str(message)
    except (ValueError, RecursionError):
        pass
    return snippet(text, 300)


def snippet(value: Any, limit: int = 80) -> str:
    """``value`` as one printable line of at most ``limit`` characters (for quoting server replies)."""
    text = value if isinstance(value, str) else reprlib.repr(value)
    text = " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 4]).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""A hostile OpenAI-compatible server on 127.0.0.1 for ``benchmarks/guards.py`` (one behaviour per run).

    python benchmarks/_hostile_server.py MODE LOGFILE      # prints its port, then serves until killed

Every request's arrival time (``time.time()``) is appended to LOGFILE, one per line. Modes: see ``MODES``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

VALID = {"id": "x", "object": "text_completion", "model": "m",
         "choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
CHUNK = json.dumps({"id": "x", "object": "text_completion", "model": "m",
                    "choices": [{"index": 0, "text": "a", "finish_reason": None}]})
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def _response(body: bytes, status: str = "200 OK", kind: str = "application/json", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


async def _slowloris(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    while True:
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.5)


async def _sse_forever(writer: asyncio.StreamWriter, line: bytes, pause: float) -> None:
    writer.write(SSE_HEAD)
    while True:
        writer.write(line)
        await writer.drain()
        await asyncio.sleep(pause)


async def _truncated(writer: asyncio.StreamWriter) -> None:
    writer.write(SSE_HEAD + b"".join(f"data: {CHUNK}\n\n".encode() for _ in range(3)))
    await writer.drain()
    writer.close()  # no final chunk, no [DONE]


async def _huge(writer: asyncio.StreamWriter) -> None:
    head, tail = b'{"choices": [{"index": 0, "finish_reason": "stop", "text": "', b'"}]}'
    size = 200 * 1024 * 1024
    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode())
    writer.write(head)
    block = b"a" * (1024 * 1024)
    left = size - len(head) - len(tail)
    while left > 0:
        writer.write(block[:left])
        left -= min(left, len(block))
        await writer.drain()
    writer.write(tail)
    await writer.drain()


def _fixed(body: bytes, **options: str):
    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(_response(body, **options))
        await writer.drain()
    return reply


MODES = {
    "slowloris": _slowloris,
    "sse_endless": lambda w: _sse_forever(w, f"data: {CHUNK}\n\n".encode(), 0.1),
    "sse_keepalive": lambda w: _sse_forever(w, b": keep-alive\n\n", 0.2),
    "truncated_stream": _truncated,
    "huge_body": _huge,
    "invalid_json": _fixed(b'{"choices": [{"index": 0, "text": "ok"'),
    "html": _fixed(b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", kind="text/html"),
    "json_array": _fixed(b"[1, 2, 3]"),
    "null_message": _fixed(json.dumps({"choices": [{"index": 0, "message": None, "finish_reason": "stop"}]}).encode()),
    "empty_choices": _fixed(json.dumps({"choices": [], "usage": VALID["usage"]}).encode()),
    "bad_utf8": _fixed(b'{"choices": [{"index": 0, "text": "\xff\xfe\xfd", "finish_reason": "stop"}]}'),
    "wrong_sample_count": _fixed(json.dumps(VALID).encode()),
}


async def _read_request(reader: asyncio.StreamReader) -> bool:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    await reader.readexactly(length)
    return True


async def serve(mode: str, log: str) -> None:
    seen = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        try:
            while await _read_request(reader):
                seen += 1
                with open(log, "a") as f:
                    f.write(f"{time.time()}\n")
                if mode == "retry_after":  # the first request is refused with Retry-After, the rest served
                    body = b'{"error": {"message": "slow down"}}' if seen == 1 else json.dumps(VALID).encode()
                    extra = "Retry-After: 3\r\n" if seen == 1 else ""
                    writer.write(_response(body, status="429 Too Many Requests" if seen == 1 else "200 OK",
                                           extra=extra))
                    await writer.drain()
                    continue
                await MODES[mode](writer)
                if mode not in ("invalid_json", "html", "json_array", "null_message", "empty_choices", "bad_utf8",
                                "wrong_sample_count"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))

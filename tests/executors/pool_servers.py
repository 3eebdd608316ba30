"""Real local OpenAI-compatible HTTP servers for the endpoint-pool tests, each on its own 127.0.0.1 port.

A :class:`Replica` answers completions with its own name as the text, so a test
sees which server served a request; it records the ``X-Plait-Route`` header of
every request. ``mode`` switches it while it runs: ``"ok"``, ``"fail"`` (HTTP
503 to everything, model list included), ``"hang"`` (accepts, never answers
until the test ends). Run as a script (``python pool_servers.py NAME``) it
serves in a process of its own and prints its port, for SIGKILL tests.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_LIMIT = 60.0  # a hanging reply ends by itself at the latest after this (the tests end them sooner)


class Replica:
    def __init__(self, name: str, *, model: str = "stub-model", delay: float = 0.0, port: int = 0):
        self.name, self.model, self.delay, self.mode = name, model, delay, "ok"
        self.routes: list[str | None] = []  # X-Plait-Route of each completion request, in arrival order
        self.prompts: list[str] = []
        self.probes = 0  # GET /v1/models requests
        self._release = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Replica:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening: connections are then refused."""
        self._release.set()
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    @property
    def served(self) -> int:
        return len(self.routes)

    def wait(self) -> None:
        self._release.wait(HANG_LIMIT)

    def record(self, route: str | None, prompt: str) -> None:
        with self._lock:
            self.routes.append(route)
            self.prompts.append(prompt)


def _handler(replica: Replica) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            replica.probes += 1
            if replica.mode == "fail":
                return self._send({"error": {"message": "replica unavailable"}}, 503)
            if replica.mode == "hang":
                replica.wait()
            self._send({"object": "list", "data": [{"id": replica.model, "object": "model"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if replica.mode == "fail":
                return self._send({"error": {"message": "replica unavailable"}}, 503)
            if replica.mode == "hang":
                replica.wait()
                return self._send({"error": {"message": "released"}}, 503)
            prompt = body.get("prompt") or body["messages"][-1]["content"]
            replica.record(self.headers.get("X-Plait-Route"), prompt)
            time.sleep(replica.delay)
            n = body.get("n", 1)
            if body.get("stream"):
                return self._stream(n, chat="messages" in body)
            if "messages" in body:
                choices = [{"index": i, "message": {"role": "assistant", "content": replica.name},
                            "finish_reason": "stop"} for i in range(n)]
            else:
                choices = [{"index": i, "text": replica.name, "finish_reason": "stop"} for i in range(n)]
            self._send({"id": "x", "object": "text_completion", "model": replica.model, "choices": choices,
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})

        def _stream(self, n: int, chat: bool) -> None:
            field = {"delta": {"content": replica.name}} if chat else {"text": replica.name}
            events = [{"choices": [{"index": i, **field, "finish_reason": "stop"}]} for i in range(n)]
            events.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": n}})
            payload = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _send(self, data: dict, status: int = 200) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def refusing_url() -> tuple[socket.socket, str]:
    """A URL whose port is bound but not listening (connections are refused); keep the socket open meanwhile."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


if __name__ == "__main__":
    served = Replica(sys.argv[1], delay=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    print(served.url, flush=True)
    served.server.serve_forever()

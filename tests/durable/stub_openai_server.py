"""A tiny OpenAI-compatible server for fault tests: echoes prompts, slowly; prints 'ready' once listening."""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(0.05)
        if self.path.endswith("/chat/completions"):
            text = "echo:" + body["messages"][-1]["content"]
            choices = [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                       for i in range(body.get("n", 1))]
        else:
            text = "echo:" + body["prompt"]
            choices = [{"index": i, "text": text, "finish_reason": "stop"} for i in range(body.get("n", 1))]
        self._send({"id": "x", "object": "text_completion", "model": "stub", "choices": choices,
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})

    def _send(self, data):
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    server.serve_forever()

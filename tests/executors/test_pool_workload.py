"""The scale-out benchmark's routing workload and metrics reader, without vLLM (the benchmark itself is not a test)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio

from benchmarks._scaleout_routing import cache_counters, document, workload_graph
from plait import ScriptedBackend

METRICS = b"""# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="tiny-random"} 1280.0
vllm:prefix_cache_hits_total{engine="0",model_name="tiny-random"} 960.0
vllm:prompt_tokens_total{engine="0",model_name="tiny-random"} 1.5e+03
vllm:prefix_cache_hits_created 1.7e+09
"""


def test_each_program_sends_fan_outs_and_a_tree_over_its_own_document():
    backend = ScriptedBackend(lambda request: "noise")
    doc = document(5, 200)
    result = anyio.run(lambda: workload_graph().run({"doc": doc}, backend=backend))
    assert result.status == "ok"
    requests = backend.requests
    assert sorted(r.params.n for r in requests) == [1] * 7 + [8] * 3
    assert all(r.prompt_text().startswith(doc) for r in requests)
    assert len({r.route for r in requests}) == 1
    follow_ups = [r.prompt_text() for r in requests if r.prompt_text().endswith("Follow-up:")]
    assert len(follow_ups) == 3 and all("\nPlan:" in p and "\nThought:" in p for p in follow_ups)
    assert document(5, 200) == doc and document(6, 200) != doc


def test_cache_counters_reads_vllm_prometheus_counters():
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(METRICS)))
            self.end_headers()
            self.wfile.write(METRICS)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        counters = cache_counters(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert counters == {"queries": 1280.0, "hits": 960.0, "prompt_tokens": 1500.0}

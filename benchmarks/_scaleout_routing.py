"""Routing half of the scale-out benchmark: vLLM servers (one core each), their metrics, a program workload.

:func:`vllm_servers` starts real vLLM OpenAI servers, one pinned to each core,
with prefix caching and a KV cache of ``blocks`` blocks (a small cache makes
the replicas' cache capacity count, as it does on a loaded GPU). It is also
what the pool's vLLM tests start. :func:`cache_counters` reads a server's
Prometheus counters; :func:`measure` runs the workload through an
:class:`~plait.EndpointPool` with one routing and reports what it cost.

The workload is ``programs`` runs of one graph, ``concurrency`` at a time.
Each run reads its own long document (the shared prefix) and asks it three
questions with a k=8 fan-out each (``FanOut``: one ``n=8`` request per
question) and one subtask tree whose turns extend their parent's context
(three subtasks, each with a follow-up), as plait's ``SubtaskTree`` builds
them. The requests are the same whatever the model answers, so a random
model serves it and every routing arm sends the same prompts.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx

from plait import FanOut, Graph, Request, RunContext, SamplingParams
from plait.executors import EndpointPool
from plait.planners import ChainStep

MODEL = "tiny-random"
START_TIMEOUT = 600.0
_COUNTERS = {"vllm:prefix_cache_queries_total": "queries", "vllm:prefix_cache_hits_total": "hits",
             "vllm:prompt_tokens_total": "prompt_tokens"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(model_path: str, port: int, *, blocks: int | None, max_model_len: int = 4096) -> list[str]:
    """The command line of one vLLM OpenAI server: prefix caching, cached-token details, metrics on."""
    from plait.executors._vllm_engine import cpu_engine_defaults

    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path,
               "--served-model-name", Path(model_path).name, "--host", "127.0.0.1", "--port", str(port),
               "--max-model-len", str(max_model_len), "--enforce-eager", "--enable-prefix-caching",
               "--enable-prompt-tokens-details", "--max-num-seqs", "64"]
    if blocks is not None:
        command += ["--num-gpu-blocks-override", str(blocks)]
    for option, value in cpu_engine_defaults().items():
        name = option.replace("_", "-")
        command += [f"--{name}" if value else f"--no-{name}"] if isinstance(value, bool) else [f"--{name}", str(value)]
    return command


class Server:
    """One vLLM server process group (the API server and its engine core), pinned to ``core``."""

    def __init__(self, model_path: str, core: int, *, blocks: int | None, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"server-{core}.log"
        env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": str(core), "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
               "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(server_command(model_path, self.port, blocks=blocks), stdout=log,
                                            stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(1)
        raise RuntimeError(f"vLLM server not healthy after {START_TIMEOUT:g}s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the engine core too) and reap the server."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextlib.contextmanager
def vllm_servers(model_path: str, count: int = 2, *, blocks: int | None = None,
                 log_dir: Path | None = None) -> Iterator[list[Server]]:
    """``count`` vLLM servers of ``model_path``, server i on core i; stopped (process groups) on exit."""
    with contextlib.ExitStack() as stack:
        folder = log_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plait-vllm-")))
        servers: list[Server] = []
        try:
            for core in range(count):
                servers.append(Server(model_path, core % (os.cpu_count() or 1), blocks=blocks, log_dir=folder))
            deadline = time.monotonic() + START_TIMEOUT
            for server in servers:
                server.wait_healthy(deadline)
            yield servers
        finally:
            for server in servers:
                server.kill(signal.SIGTERM)


def cache_counters(url: str) -> dict[str, float]:
    """A server's prefix-cache queries and hits and its prompt tokens (Prometheus counters, in tokens)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = dict.fromkeys(_COUNTERS.values(), 0.0)
    for line in text.splitlines():
        match = re.match(r"([a-z_:]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if match and match[1] in _COUNTERS:
            found[_COUNTERS[match[1]]] += float(match[3])
    return found


# --- the workload ---

_WORDS = ("orbit delta vector kernel lattice prism signal harbor meadow copper quartz tundra glacier canyon "
          "falcon ember willow cobalt saffron juniper").split()
QUESTIONS = ("Who is the main actor?", "What happened first?", "What is the outcome?")
SHORT = SamplingParams(max_tokens=8, temperature=0.0, seed=0)


def document(i: int, words: int) -> str:
    """Program ``i``'s own long document (about ``words`` tokens), deterministic."""
    rng = random.Random(i)
    return f"Document {i}.\n" + " ".join(rng.choice(_WORDS) for _ in range(words)) + "\n"


def workload_graph() -> Graph:
    graph = Graph("scaleout-program")
    for q, question in enumerate(QUESTIONS):
        graph.add(FanOut(ChainStep("{doc}Question: " + question + "\nAnswer:", sampling=SHORT), k=8,
                         sampling=SHORT.model_copy(update={"temperature": 0.8}), keep_truncated=True,
                         name=f"vote{q}"))

    @graph.node
    async def tree(doc: str, ctx: RunContext) -> int:
        """The request pattern of a subtask tree: a root turn, then subtasks extending its context."""
        root = doc + "Task: summarise the document.\nPlan:"
        plan = (await ctx.generate(Request(prompt=root, params=SHORT))).text

        async def subtask(s: int) -> None:
            context = f"{root}{plan}\nSubtask {s}: part {s} of the document.\nThought:"
            thought = (await ctx.generate(Request(prompt=context, params=SHORT))).text
            await ctx.generate(Request(prompt=f"{context}{thought}\nFollow-up:", params=SHORT))

        async with anyio.create_task_group() as tg:
            for s in range(3):
                tg.start_soon(subtask, s)
        return 7

    return graph


async def _run_programs(pool: EndpointPool, programs: int, concurrency: int, words: int, first: int) -> None:
    graph, limit = workload_graph(), anyio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limit:
            result = await graph.run({"doc": document(first + i, words)}, backend=pool)
            if result.status != "ok":
                raise RuntimeError(f"program {i} ended {result.status}: {result.error}")

    async with anyio.create_task_group() as tg:
        for i in range(programs):
            tg.start_soon(one, i)


def measure(urls: list[str], routing: str, *, programs: int, concurrency: int, words: int,
            salt: int = 0) -> dict[str, float]:
    """Run the workload once with ``routing``: hit rate, prefilled prompt tokens (from the servers) and wall time.

    ``salt`` picks other documents, so that each arm starts with nothing of its own in the caches.
    """
    before = [cache_counters(url) for url in urls]
    started = time.perf_counter()

    async def main() -> None:
        async with EndpointPool(urls, routing=routing, timeout=600) as pool:  # type: ignore[arg-type]
            await _run_programs(pool, programs, concurrency, words, first=salt * 100_000)

    anyio.run(main)
    wall = time.perf_counter() - started
    after = [cache_counters(url) for url in urls]
    delta = {key: sum(a[key] - b[key] for a, b in zip(after, before)) for key in before[0]}
    return {"hit_rate": delta["hits"] / delta["queries"] if delta["queries"] else 0.0,
            "prefill_tokens": int(delta["queries"] - delta["hits"]), "wall_s": wall}

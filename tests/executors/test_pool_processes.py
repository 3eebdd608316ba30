"""EndpointPool with servers in processes of their own: a replica SIGKILLed mid-run, and ``plait run --model A,B``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from plait import Graph, Request, RunContext, SamplingParams
from plait.executors import EndpointPool
from tests.executors.pool_servers import Replica

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).with_name("pool_servers.py")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.fixture
def server_processes():
    """Two replica servers in child processes; yields {name: (url, process)}."""
    started = {}
    try:
        for name in "ab":
            process = subprocess.Popen([sys.executable, str(SERVER), name, "0.05"], stdout=subprocess.PIPE,
                                       text=True, env=_env())
            started[name] = (process.stdout.readline().strip(), process)
        yield started
    finally:
        for _, process in started.values():
            process.kill()
            process.wait(timeout=30)


def test_a_replica_killed_mid_run_the_run_completes_on_the_other(server_processes):
    graph = Graph("long")
    processes = {name: process for name, (_, process) in server_processes.items()}

    @graph.node
    async def steps(ctx: RunContext) -> list[str]:
        served = []
        for i in range(8):
            served.append((await ctx.generate(Request(prompt=f"step {i}", params=SamplingParams(max_tokens=2)))).text)
            if i == 2:  # mid-run: the replica that served the run so far dies
                processes[served[0]].send_signal(signal.SIGKILL)
                processes[served[0]].wait(timeout=30)
        return served

    async def main():
        async with EndpointPool([url for url, _ in server_processes.values()], routing="program") as pool:
            return await graph.run(None, backend=pool), pool

    result, pool = anyio.run(main)
    served = result.output
    assert result.status == "ok"
    first, other = served[0], ({"a", "b"} - {served[0]}).pop()
    assert served == [first] * 3 + [other] * 5  # one replica until it died, then the other
    dead = next(r for r in pool.replicas if r.url == server_processes[first][0])
    assert dead.down_until is not None


LLM_GRAPH = '''from plait import Graph, Request, RunContext, SamplingParams
graph = Graph("ask")

@graph.node
async def ask(question: str, ctx: RunContext) -> str:
    return (await ctx.generate(Request(prompt=question, params=SamplingParams(max_tokens=2)))).text
'''


def _plait(folder: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plait.cli", *argv], cwd=folder, env=_env(),
                          capture_output=True, text=True, timeout=120)


def test_cli_model_takes_a_list_of_server_urls(tmp_path):
    (tmp_path / "ask.py").write_text(LLM_GRAPH)
    with Replica("a") as a, Replica("b") as b:
        done = _plait(tmp_path, "run", "ask.py:graph", "--model", f"{a.url},{b.url}", "--input", '"hi"')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ('"a"', "a", '"b"', "b")
    assert a.served + b.served == 1 and (a.routes + b.routes)[0]  # the run's id as its route


def test_cli_refuses_a_bad_url_list_in_one_line(tmp_path):
    (tmp_path / "ask.py").write_text(LLM_GRAPH)
    done = _plait(tmp_path, "run", "ask.py:graph", "--model", "http://127.0.0.1:1,,http://127.0.0.1:1",
                  "--input", '"hi"')
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert "entry 2 of 'http://127.0.0.1:1,,http://127.0.0.1:1' is empty" in done.stderr
    assert "entry 3" in done.stderr and "names the same server" in done.stderr

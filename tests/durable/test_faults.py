"""Fault injection with real processes and signals: SIGKILL, SIGTERM, a server that restarts."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from plait import Graph, OpenAIBackend, Request, RunContext, SamplingParams

HERE = Path(__file__).parent
PIPELINE = f"{HERE / 'batch_pipeline.py'}:graph"
N = 200


def _inputs(tmp_path: Path) -> Path:
    path = tmp_path / "inputs.jsonl"
    path.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(N)))
    return path


def _batch(tmp_path: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "plait.cli", "run", PIPELINE, "--inputs", str(_inputs(tmp_path)),
           "--output", str(out), "--concurrency", "8", *extra]
    env = dict(os.environ, PIPELINE_LATENCY="0.02")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait_for_lines(proc: subprocess.Popen, path: Path, target: int, limit: float = 60.0) -> bool:
    """Poll until the results file has ``target`` lines; False if the process ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if _lines(path) >= target:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.003)
    raise AssertionError(f"no progress to {target} lines within {limit}s")


def _results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("clean")
    out = tmp / "results.jsonl"
    proc = _batch(tmp, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # 1: some inputs (the poisoned ones) failed, each with its record
    return _results(out)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path, uninterrupted):
    out, db = tmp_path / "results.jsonl", tmp_path / "runs.db"
    rng = random.Random(20261123)
    targets = sorted(rng.sample(range(15, N - 30), 4))
    interrupted_at = []
    for target in targets:
        proc = _batch(tmp_path, out, "--checkpoint", str(db), "--run-id", "eval")
        reached = _wait_for_lines(proc, out, target)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert reached, f"the batch finished before the kill at {target} lines"
        interrupted_at.append(_lines(out))
    proc = _batch(tmp_path, out, "--checkpoint", str(db), "--run-id", "eval")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "finished earlier" in err
    final = _results(out)
    indices = [r["index"] for r in final]
    assert indices == list(range(N)), "every input exactly once, in input order"
    assert [(r["status"], r["output"], r["error"]) for r in final] == [
        (r["status"], r["output"], r["error"]) for r in uninterrupted]
    assert all(0 < n < N for n in interrupted_at), interrupted_at


def test_sigterm_saves_a_resumable_state(tmp_path, uninterrupted):
    out, db = tmp_path / "results.jsonl", tmp_path / "runs.db"
    proc = _batch(tmp_path, out, "--checkpoint", str(db))
    assert _wait_for_lines(proc, out, 40)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted by SIGTERM" in err and "resume" in err
    from plait import SQLiteCheckpointer

    with SQLiteCheckpointer(db) as store:
        statuses = [r.status for r in store.list_runs("inputs/")]
    assert "cancelled" in statuses and "running" not in statuses, statuses
    proc = _batch(tmp_path, out, "--checkpoint", str(db))
    proc.communicate(timeout=120)
    assert [(r["index"], r["output"]) for r in _results(out)] == [(r["index"], r["output"]) for r in uninterrupted]


# -- an OpenAI-compatible server that goes away and comes back --------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_stub(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(HERE / "stub_openai_server.py"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_http_backend_rides_out_a_server_restart():
    port = _free_port()
    server = _start_stub(port)
    g = Graph("restart")

    @g.node
    async def ask(q: int, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=f"q{q}", params=SamplingParams(max_tokens=4)))).text

    @g.node
    def items(n: int) -> list[int]:
        return list(range(n))

    g.map(items, ask)
    backend = OpenAIBackend(f"http://127.0.0.1:{port}", model="stub", max_retries=8, backoff=0.1, timeout=10)
    restarted = []

    async def main():
        nonlocal server
        async with backend, anyio.create_task_group() as tg:
            async def restart():
                await anyio.sleep(0.4)
                server.kill()  # mid-run: requests in flight see their connection drop
                server.wait()
                await anyio.sleep(1.0)
                restarted.append(_start_stub(port))

            tg.start_soon(restart)
            return await g.run(40, backend=backend, max_concurrency=4)

    try:
        result = anyio.run(main)
    finally:
        server.kill()
        for proc in restarted:
            proc.kill()
    assert restarted, "the server was never restarted"
    assert result.output == [f"echo:q{i}" for i in range(40)]

"""Several worker processes on one batch (real processes, real signals): no input lost, none run twice."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
PIPELINE = f"{HERE / 'batch_pipeline.py'}:graph"
N = 160


def _expected(x: int) -> tuple:
    if x % 50 == 49:
        return ("failed", None)
    return ("ok", {"x": x, "text": f"<DRAFT FOR {x}>", "score": (x * 7919) % 101})


def _worker(tmp: Path, checkpoint: str, out: Path, *, concurrency: int, **env: str) -> subprocess.Popen:
    inputs = tmp / "inputs.jsonl"
    if not inputs.exists():
        inputs.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(N)))
    cmd = [sys.executable, "-m", "plait.cli", "run", PIPELINE, "--inputs", str(inputs), "--output", str(out),
           "--checkpoint", checkpoint, "--run-id", "eval", "--concurrency", str(concurrency), "--lease", "4"]
    full_env = dict(os.environ, PIPELINE_LATENCY="0.02", PIPELINE_EFFECTS=str(tmp / "effects"), **env)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)


def _effects(tmp: Path) -> dict[int, Counter]:
    """How many times each node completed for each input, and in which process."""
    runs = {}
    for x in range(N):
        path = tmp / "effects" / str(x)
        runs[x] = Counter(path.read_text().splitlines()) if path.exists() else Counter()
    return runs


def _check_complete(out: Path) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(N)), "every input exactly once, in input order"
    assert [(r["status"], r["output"]) for r in rows] == [_expected(x) for x in range(N)]


def _check_each_node_ran_once(tmp: Path) -> dict[int, Counter]:
    effects = _effects(tmp)
    for x, seen in effects.items():
        nodes = Counter(line.split()[0] for line in seen.elements())
        want = {"draft": 1} if x % 50 == 49 else {"draft": 1, "refine": 1, "score": 1}
        assert nodes == want, f"input {x}: {dict(seen)}"
    return effects


def _kill_when_hanging(proc: subprocess.Popen, marker: Path, limit: float = 120.0) -> int:
    deadline = time.monotonic() + limit
    while not marker.exists():
        assert proc.poll() is None, f"the worker ended before hanging: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "the worker never reached its hanging input"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return int(marker.read_text().split()[0])


def test_two_processes_on_one_sqlite_batch_never_run_an_input_twice(tmp_path):
    (tmp_path / "effects").mkdir()
    db = str(tmp_path / "runs.db")
    a = _worker(tmp_path, db, tmp_path / "a.jsonl", concurrency=4)
    b = _worker(tmp_path, db, tmp_path / "b.jsonl", concurrency=4)
    for proc in (a, b):
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 1, err  # 1: the poisoned inputs failed, each with its record
    _check_complete(tmp_path / "a.jsonl")
    _check_complete(tmp_path / "b.jsonl")
    effects = _check_each_node_ran_once(tmp_path)
    pids = Counter(line.split()[1] for seen in effects.values() for line in seen)
    assert set(pids) == {str(a.pid), str(b.pid)}, "both workers did part of the batch"


def _sigkill_one_of_two(tmp_path: Path, checkpoint: str) -> None:
    (tmp_path / "effects").mkdir()
    # A takes one input at a time and hangs inside its third: killed there, it holds exactly that input
    a = _worker(tmp_path, checkpoint, tmp_path / "a.jsonl", concurrency=1, PIPELINE_HANG_AFTER="3")
    b = _worker(tmp_path, checkpoint, tmp_path / "b.jsonl", concurrency=4)
    try:
        hung = _kill_when_hanging(a, tmp_path / "effects" / "hanging")
        _, err = b.communicate(timeout=240)
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.kill()
    assert b.returncode == 1, err
    _check_complete(tmp_path / "b.jsonl")
    effects = _check_each_node_ran_once(tmp_path)
    assert effects[hung]["draft " + str(a.pid)] == 1, "the killed worker's committed node was not run again"
    assert effects[hung]["refine " + str(b.pid)] == 1, "the survivor took the killed worker's input over"
    assert sum(seen["draft " + str(a.pid)] for seen in effects.values()) == 3


def test_sigkill_of_one_of_two_workers_on_postgres_loses_and_duplicates_nothing(tmp_path, postgres_url):
    _sigkill_one_of_two(tmp_path, postgres_url)


def test_sigkill_of_one_of_two_workers_on_sqlite_loses_and_duplicates_nothing(tmp_path):
    _sigkill_one_of_two(tmp_path, str(tmp_path / "runs.db"))


def _stalled_past_its_lease(tmp_path: Path, checkpoint: str) -> None:
    (tmp_path / "effects").mkdir()
    effects = tmp_path / "effects"
    # A takes one input at a time and freezes after its third refine, before that refine's commit
    a = _worker(tmp_path, checkpoint, tmp_path / "a.jsonl", concurrency=1, PIPELINE_STALL_AFTER="3")
    b = None
    try:
        deadline = time.monotonic() + 120
        while not (effects / "stalled").exists():
            assert a.poll() is None, a.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "worker A never reached its stall"
            time.sleep(0.01)
        stalled = int((effects / "stalled").read_text().split()[0])
        b = _worker(tmp_path, checkpoint, tmp_path / "b.jsonl", concurrency=4)
        _, err = b.communicate(timeout=240)  # B finishes the batch, the stalled input included, once A's lease lapsed
        assert b.returncode == 1, err
        (effects / "resume").write_text("")  # A wakes up, with a lease it no longer holds
        _, err = a.communicate(timeout=240)
        assert a.returncode == 1, err
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
    _check_complete(tmp_path / "a.jsonl")
    _check_complete(tmp_path / "b.jsonl")
    seen = _effects(tmp_path)
    nodes = Counter(line.split()[0] for line in seen[stalled].elements())
    # the refine A was inside when it froze finished (nothing can stop running code), and B ran it again as A
    # never committed it; but after waking A started nothing for that input, and wrote none of its results
    assert nodes == {"draft": 1, "refine": 2, "score": 1}, dict(seen[stalled])
    assert seen[stalled][f"score {b.pid}"] == 1
    for x, lines in seen.items():
        if x != stalled:
            want = {"draft": 1} if x % 50 == 49 else {"draft": 1, "refine": 1, "score": 1}
            assert Counter(line.split()[0] for line in lines.elements()) == want, f"input {x}: {dict(lines)}"


def test_a_worker_stalled_past_its_lease_writes_nothing_more_for_that_input_on_sqlite(tmp_path):
    _stalled_past_its_lease(tmp_path, str(tmp_path / "runs.db"))


def test_a_worker_stalled_past_its_lease_writes_nothing_more_for_that_input_on_postgres(tmp_path, postgres_url):
    _stalled_past_its_lease(tmp_path, postgres_url)

"""Batches on a real local Ray cluster over a real PostgreSQL server: same results, nothing lost, nothing twice.

One cluster for the module (``ray.init`` in this process, stopped at the end; its workers inherit
``PIPELINE_EFFECTS``, so each node of batch_pipeline.py leaves a line per completion, with its pid).
Workers are killed with real SIGKILLs while they provably hold an input (a node that hangs).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]' (make test installs it)")

import batch_pipeline as pipeline  # noqa: E402

from plait import MemoryCheckpointer, PlaitError, run_batch  # noqa: E402
from plait.durable import RayExecutor  # noqa: E402
from plait.errors import ConfigError  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
TARGET = f"{HERE / 'batch_pipeline.py'}:graph"
N = 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    effects = tmp_path_factory.mktemp("effects")
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    names = ("PYTHONPATH", "PIPELINE_EFFECTS", "PIPELINE_LATENCY")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), str(HERE), saved["PYTHONPATH"]])),
                      PIPELINE_EFFECTS=str(effects), PIPELINE_LATENCY="0.02")
    try:
        ray.init(num_cpus=2, object_store_memory=100 * 2**20, include_dashboard=False, _temp_dir=temp,
                 logging_level="WARNING")
        yield SimpleNamespace(address=ray.get_runtime_context().gcs_address, effects=effects)
    finally:
        ray.shutdown()
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        shutil.rmtree(temp, ignore_errors=True)


def _fresh(effects: Path) -> Path:
    for path in effects.iterdir():
        path.unlink()
    return effects


def _expected(x: int) -> tuple:
    if x % 50 == 49:
        return ("failed", None)
    return ("ok", {"x": x, "text": f"<DRAFT FOR {x}>", "score": (x * 7919) % 101})


def _check_complete(out: Path) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(N)), "every input exactly once, in input order"
    assert [(r["status"], r["output"]) for r in rows] == [_expected(x) for x in range(N)]


def _each_node_ran_once(effects: Path) -> dict[int, Counter]:
    """Each input's node completions as 'NODE PID' counts, after checking each node completed exactly once."""
    runs = {}
    for x in range(N):
        path = effects / str(x)
        seen = Counter(path.read_text().splitlines()) if path.exists() else Counter()
        nodes = Counter(line.split()[0] for line in seen.elements())
        want = {"draft": 1} if x % 50 == 49 else {"draft": 1, "refine": 1, "score": 1}
        assert nodes == want, f"input {x}: {dict(seen)}"
        runs[x] = seen
    return runs


async def _hanging(effects: Path, count: int) -> list[tuple[int, int]]:
    """(input, pid) of each worker hanging inside an input, once ``count`` of them are (each writes DIR/hanging.PID)."""
    with anyio.fail_after(120):
        while len(markers := sorted(effects.glob("hanging.*"))) < count:
            await anyio.sleep(0.01)
    return [(int(x), int(pid)) for x, pid, _ in (marker.read_text().split() for marker in markers)]


def _hang(after: int, *, one: bool) -> dict:
    env = {"PIPELINE_HANG_AFTER": str(after), **({"PIPELINE_HANG_ONE": "1"} if one else {})}
    return {"runtime_env": {"env_vars": env}}


def test_a_batch_on_ray_over_postgres_equals_a_local_run(cluster, postgres_url, tmp_path):
    inputs = [{"x": x} for x in range(N)]
    local = anyio.run(lambda: run_batch(pipeline.graph, inputs, backend=pipeline.make_backend()))
    seen = []
    executor = RayExecutor(workers=2, backend=pipeline.make_backend)  # the graph and the factory go pickled
    result = anyio.run(lambda: run_batch(pipeline.graph, inputs, executor=executor, checkpoint=postgres_url,
                                         output=tmp_path / "ray.jsonl", on_item=seen.append))
    assert [item.to_json() for item in result.items] == [item.to_json() for item in local.items]
    assert (tmp_path / "ray.jsonl").read_text().splitlines() == [item.to_json() for item in local.items]
    assert sorted(item.index for item in seen) == list(range(N)), "on_item once per input"
    assert (result.ok, result.failed, result.resumed) == (N - 1, 1, 0)


def test_sigkill_of_a_ray_worker_mid_batch_loses_and_duplicates_nothing(cluster, postgres_url, tmp_path):
    effects = _fresh(cluster.effects)
    (tmp_path / "inputs.jsonl").write_text("".join(json.dumps({"x": x}) + "\n" for x in range(N)))
    executor = RayExecutor(workers=2, graph=TARGET, actor_options=_hang(3, one=True))
    out = tmp_path / "out.jsonl"

    async def main() -> tuple[int, int]:
        async with anyio.create_task_group() as tg:
            async def kill_when_hanging() -> None:
                [(x, pid)] = await _hanging(effects, 1)
                os.kill(pid, signal.SIGKILL)
                killed.extend((x, pid))

            killed: list[int] = []
            tg.start_soon(kill_when_hanging)
            await run_batch(pipeline.graph, [{"x": x} for x in range(N)], executor=executor,
                            checkpoint=postgres_url, batch_id="eval", concurrency=1, lease=4, output=out)
        return killed[0], killed[1]

    hung, pid = anyio.run(main)
    _check_complete(out)
    runs = _each_node_ran_once(effects)
    assert runs[hung][f"draft {pid}"] == 1, "the killed worker's committed node was not run again"
    assert runs[hung][f"refine {pid}"] == 0 and runs[hung]["score " + str(pid)] == 0
    assert sum(seen[f"draft {pid}"] for seen in runs.values()) == 3, "the killed worker ran 3 inputs"
    pids = {line.split()[1] for seen in runs.values() for line in seen}
    assert len(pids) == 2 and str(pid) in pids, "the survivor took the killed worker's input over"


def test_a_second_driver_resumes_a_batch_on_ray(cluster, postgres_url, tmp_path):
    effects = _fresh(cluster.effects)
    inputs = tmp_path / "eval.jsonl"
    inputs.write_text("".join(json.dumps({"x": x}) + "\n" for x in range(N)))
    first = RayExecutor(workers=2, graph=TARGET, actor_options=_hang(3, one=False))

    async def stop_first_driver_when_both_workers_hang() -> list[tuple[int, int]]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: run_batch(pipeline.graph, [{"x": x} for x in range(N)], executor=first,
                                            checkpoint=postgres_url, batch_id="eval", concurrency=1, lease=4))
            hung = await _hanging(effects, 2)
            tg.cancel_scope.cancel()  # the driver stops its workers, each inside its third input
        return hung

    hung = anyio.run(stop_first_driver_when_both_workers_hang)
    cmd = [sys.executable, "-m", "plait.cli", "run", TARGET, "--inputs", str(inputs), "--checkpoint", postgres_url,
           "--ray", cluster.address, "--workers", "2", "--lease", "4"]  # results on stdout, as they finish
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert second.returncode == 1, second.stderr  # 1: the poisoned input failed, with its record
    assert f"batch: {N} inputs, {N - 1} ok, 1 failed (4 finished earlier)" in second.stderr
    runs = _each_node_ran_once(effects)
    first_pids = {str(pid) for _, pid in hung}
    finished_first = {x for x, seen in runs.items() if any(line.split()[1] in first_pids for line in seen
                                                           if line.startswith("score"))}
    assert len(finished_first) == 4
    rows = sorted((json.loads(line) for line in second.stdout.splitlines()), key=lambda row: row["index"])
    # stdout holds result lines only (no worker log lines): one per input this driver ran, as in a local batch
    assert [r["index"] for r in rows] == sorted(set(range(N)) - finished_first)
    assert [(r["status"], r["output"]) for r in rows] == [_expected(r["index"]) for r in rows]
    for x, pid in hung:
        assert runs[x][f"draft {pid}"] == 1, "the committed draft of a stopped input was not run again"
        assert not any(line.split()[1] in first_pids for line in runs[x] if not line.startswith("draft"))
    ran_first = [x for x, seen in runs.items() if any(line.split()[1] in first_pids for line in seen)]
    assert len(ran_first) == 6, "the first driver's workers each finished 2 inputs and began a third"


def test_an_sqlite_checkpoint_works_on_a_local_cluster_and_resumes(cluster, tmp_path):
    db, inputs = tmp_path / "runs.db", [{"x": x} for x in range(20)]
    executor = RayExecutor(workers=2, backend=pipeline.make_backend)
    first = anyio.run(lambda: run_batch(pipeline.graph, inputs, executor=executor, checkpoint=str(db)))
    assert [item.output for item in first.items] == [_expected(x)[1] for x in range(20)]
    again = anyio.run(lambda: run_batch(pipeline.graph, inputs, executor=executor, checkpoint=str(db)))
    assert again.resumed == 20 and [item.to_json() for item in again.items] == [item.to_json() for item in first.items]


def test_when_every_worker_dies_the_batch_stops_with_one_clear_error(cluster, postgres_url):
    effects = _fresh(cluster.effects)
    executor = RayExecutor(workers=2, graph=TARGET, actor_options=_hang(1, one=False))

    async def main() -> BaseException | None:
        async with anyio.create_task_group() as tg:
            async def kill_both() -> None:
                for _, pid in await _hanging(effects, 2):
                    os.kill(pid, signal.SIGKILL)

            tg.start_soon(kill_both)
            try:
                await run_batch(pipeline.graph, [{"x": x} for x in range(N)], executor=executor,
                                checkpoint=postgres_url, concurrency=1, lease=4)
            except PlaitError as exc:
                return exc
        return None

    error = anyio.run(main)
    assert isinstance(error, PlaitError)
    assert re.fullmatch(r"all 2 Ray workers died with 60 inputs unfinished \(first: worker \d: .*\); run the same "
                        r"batch again to resume it \(finished inputs are kept in the checkpoint\)", str(error))


def test_workers_the_cluster_cannot_place_fail_after_start_timeout(cluster, postgres_url):
    executor = RayExecutor(workers=1, backend=pipeline.make_backend, cpus_per_worker=64, start_timeout=2)
    with pytest.raises(PlaitError, match=r"1 Ray workers of 64 CPU each did not all start within 2s: the cluster "
                                         "lacks free CPUs"):
        anyio.run(lambda: run_batch(pipeline.graph, [{"x": 1}], executor=executor, checkpoint=postgres_url))


@pytest.mark.parametrize("checkpoint, address, backend, message", [
    (None, None, None, "needs checkpoint=: its workers take inputs by lease from a shared store"),
    (MemoryCheckpointer(), None, None, "not a MemoryCheckpointer object: give a postgresql:// URL"),
    ("runs.db", "ray://10.0.0.1:10001", None, "SQLite checkpoint 'runs.db' is a file on this machine, which Ray "
                                              "workers on cluster 'ray://10.0.0.1:10001' cannot share"),
    ("postgresql://h/db", None, pipeline.make_backend(), "each worker builds its own backend: pass RayExecutor"),
])
def test_what_ray_workers_cannot_share_is_refused_before_anything_runs(checkpoint, address, backend, message):
    executor = RayExecutor(address=address, workers=2)
    with pytest.raises(ConfigError, match=message):
        anyio.run(lambda: run_batch(pipeline.graph, [{"x": 1}], executor=executor, checkpoint=checkpoint,
                                    backend=backend))


def test_cli_refuses_an_sqlite_file_for_a_remote_cluster(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"x": 1}\n')
    cmd = [sys.executable, "-m", "plait.cli", "run", TARGET, "--inputs", str(tmp_path / "in.jsonl"),
           "--checkpoint", str(tmp_path / "runs.db"), "--ray", "ray://10.0.0.1:10001"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("plait: error: SQLite checkpoint ") and "use a postgresql:// URL" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_worker_that_cannot_load_the_graph_is_one_clear_error(cluster, postgres_url):
    executor = RayExecutor(workers=1, graph="no_such_module_here:graph")
    with pytest.raises(PlaitError, match=r"^a Ray worker could not start: graph target 'no_such_module_here:graph' "
                                         "on a Ray worker: cannot import module 'no_such_module_here'"):
        anyio.run(lambda: run_batch(pipeline.graph, [{"x": 1}], executor=executor, checkpoint=postgres_url))


def test_an_unreachable_cluster_is_one_clear_error(postgres_url, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"x": 1}\n')
    cmd = [sys.executable, "-m", "plait.cli", "run", TARGET, "--inputs", str(tmp_path / "in.jsonl"),
           "--checkpoint", postgres_url, "--ray", "127.0.0.1:9"]  # a fresh process: not joined to `cluster`
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("plait: error: cannot connect to Ray cluster '127.0.0.1:9': nothing answers at "
                                  "127.0.0.1:9 (Connection refused); check the address")
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("backend", [42, [], ["http://a", 3]])
def test_a_backend_spec_workers_cannot_build_from_is_refused(backend):
    with pytest.raises(ConfigError, match=r"^RayExecutor\(backend=\) takes a model name, a server URL, a non-empty "
                                         "list of URLs or a factory"):
        RayExecutor(backend=backend)

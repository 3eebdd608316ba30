"""One suite, every store: memory, SQLite and a real PostgreSQL server.

Commit and restore, recorded responses, leases (take, renew, expire, take
over), graph fingerprints, concurrent writers, and a process killed between
a commit and anything after it.
"""

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import anyio
import pytest

from plait import (CheckpointMismatchError, Graph, MemoryCheckpointer, PostgresCheckpointer, SQLiteCheckpointer,
                   run_batch)
from plait.durable import StoredNode, StoredRun

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def opener(request, tmp_path):
    """``opener()`` opens another connection to one store (the memory store is simply shared)."""
    opened = []
    if request.param == "memory":
        shared = MemoryCheckpointer()
        target, make = None, lambda: shared
    elif request.param == "sqlite":
        target = str(tmp_path / "c.db")
        make = lambda: SQLiteCheckpointer(target)  # noqa: E731
    else:
        target = request.getfixturevalue("postgres_url")
        make = lambda: PostgresCheckpointer(target)  # noqa: E731

    def open_store():
        store = make()
        opened.append(store)
        return store

    open_store.target = target
    yield open_store
    for store in opened:
        store.close()


def test_runs_round_trip_keeping_payload_types(opener):
    store = opener()
    store.put_run(StoredRun("b_%/1", "g", "fp", b"\x00\xffin", "m"))
    store.put_run(StoredRun("b_%/2", "g", "fp", '{"x": 2}', "m", status="ok", output='"out"', error="e"))
    store.put_run(StoredRun("bx%/3", "g", "fp", b"x"))  # LIKE-style wildcards in a prefix match nothing extra
    run = opener().get_run("b_%/2")
    assert (run.input, run.output, run.status, run.error) == ('{"x": 2}', '"out"', "ok", "e")
    assert run.created > 0 and run.updated >= run.created
    assert opener().get_run("b_%/1").input == b"\x00\xffin" and opener().get_run("missing") is None
    assert [r.run_id for r in opener().list_runs("b_%/")] == ["b_%/1", "b_%/2"]
    store.delete_run("b_%/1")
    assert [r.run_id for r in opener().list_runs("b")] == ["b_%/2", "bx%/3"]


def test_node_commits_are_restored_by_another_connection(opener):
    store = opener()
    store.save_node("r", StoredNode("a#0", b"h1", b"\x00v", 3, 4, 1, 1, 0.5, 2))
    store.save_node("r", StoredNode("a#0", "h2", '{"w": 1}'))  # a re-run replaces the activation
    store.save_node("r", StoredNode("a#1", b"h3", "z"))
    store.save_node("other", StoredNode("a#0", b"h", b"o"))
    assert set(store.load_nodes("r")) == {"a#0", "a#1"}  # what this connection buffered, it reads back
    store.flush()
    nodes = opener().load_nodes("r")
    assert nodes["a#0"] == StoredNode("a#0", "h2", '{"w": 1}')
    assert nodes["a#1"] == StoredNode("a#1", b"h3", "z")
    assert opener().load_nodes("nothing") == {}
    store.delete_run("r")
    assert opener().load_nodes("r") == {} and set(opener().load_nodes("other")) == {"a#0"}


def test_recorded_responses_are_write_once(opener):
    store = opener()
    store.put_record("k", b"first")
    opener().put_record("k", b"second")
    store.put_record("t", '{"text": "x"}')
    assert opener().get_record("k") == b"first" and opener().get_record("t") == '{"text": "x"}'
    assert store.get_record("nope") is None


def test_lease_take_renew_release(opener):
    a, b = opener(), opener()
    assert a.take_lease("batch/1", "A", 30)
    assert not b.take_lease("batch/1", "B", 30)
    assert a.take_lease("batch/1", "A", 30)  # its holder may take it again
    assert a.renew_lease("batch/1", "A", 30) and not b.renew_lease("batch/1", "B", 30)
    b.release_lease("batch/1", "B")  # not B's: nothing happens
    assert not b.take_lease("batch/1", "B", 30)
    a.release_lease("batch/1", "A")
    assert b.take_lease("batch/1", "B", 30)
    assert not a.renew_lease("batch/1", "A", 30)
    assert a.take_lease("batch/2", "A", 30)  # leases are per key


def test_an_expired_lease_is_taken_over(opener):
    a, b = opener(), opener()
    assert a.take_lease("batch/7", "A", 0.2)
    assert not b.take_lease("batch/7", "B", 30)
    time.sleep(0.5)  # A stopped renewing (killed)
    assert b.take_lease("batch/7", "B", 30)
    assert not a.renew_lease("batch/7", "A", 30), "the old holder learns it lost the lease"
    a.release_lease("batch/7", "A")
    assert b.renew_lease("batch/7", "B", 30), "and cannot release the new holder's lease"


def test_concurrent_writers_take_each_lease_once_and_lose_no_commit(opener):
    keys = [f"b/{i}" for i in range(40)]
    stores = [opener() for _ in range(6)]
    won: dict[str, list[str]] = {}
    lock = threading.Lock()

    def worker(n: int) -> None:
        store = stores[n]
        for key in keys:
            if store.take_lease(key, f"w{n}", 60):
                with lock:
                    won.setdefault(key, []).append(f"w{n}")
                store.save_node(key, StoredNode(f"w{n}#0", b"h", b"v"))
                store.flush()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(won) == sorted(keys) and all(len(owners) == 1 for owners in won.values()), won
    reader = opener()
    assert all(list(reader.load_nodes(key)) == [f"{won[key][0]}#0"] for key in keys)


CRASH = textwrap.dedent("""
    import os, signal, sys
    from plait import PostgresCheckpointer, SQLiteCheckpointer
    from plait.durable import StoredNode, StoredRun
    target = sys.argv[1]
    store = PostgresCheckpointer(target) if target.startswith("postgresql://") else SQLiteCheckpointer(target)
    store.put_run(StoredRun("r", "g", "fp", b"in"))
    store.save_node("r", StoredNode("a#0", b"h", b"committed"))
    store.flush()
    store.put_record("llm:1", b"sample")
    assert store.take_lease("b/0", "dead-worker", 1.0)
    store.save_node("r", StoredNode("b#0", b"h", b"never flushed"))
    os.kill(os.getpid(), signal.SIGKILL)  # before the caller hears back, before close()
""")


def test_a_process_killed_after_a_commit_loses_nothing_committed(opener):
    if opener.target is None:
        pytest.skip("an in-memory store does not outlive its process")
    proc = subprocess.run([sys.executable, "-c", CRASH, opener.target], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = opener()
    assert store.get_run("r").input == b"in" and store.get_record("llm:1") == b"sample"
    assert {k: n.outcome for k, n in store.load_nodes("r").items()} == {"a#0": b"committed"}
    assert not store.take_lease("b/0", "survivor", 30), "the dead worker's lease holds until it expires"
    time.sleep(1.3)
    assert store.take_lease("b/0", "survivor", 30)
    store.save_node("r", StoredNode("a#0", b"h", b"committed"))  # doing the acknowledged work again is harmless
    store.flush()
    store.put_record("llm:1", b"another sample")
    assert list(store.load_nodes("r")) == ["a#0"] and store.get_record("llm:1") == b"sample"


def _counting_graph(name: str, runs: Counter, *, double: bool = False) -> Graph:
    g = Graph(name)

    @g.node
    async def work(x: int) -> int:
        runs[x] += 1
        await anyio.sleep(0.001 * (x % 3))
        return 2 * x

    if double:
        @g.node
        def again(work: int) -> int:
            return 2 * work

        g.edge(work, again)
    return g


async def test_a_batch_of_another_graph_is_refused_or_forced(opener):
    store, runs = opener(), Counter()
    first = await run_batch(_counting_graph("g", runs), range(5), checkpoint=store, batch_id="b")
    assert [item.output for item in first.items] == [0, 2, 4, 6, 8]
    for other in (_counting_graph("g", runs, double=True), _counting_graph("renamed", runs)):
        with pytest.raises(CheckpointMismatchError, match=r"batch 'b' .* another graph.*force=True"):
            await run_batch(other, range(5), checkpoint=opener(), batch_id="b")
    assert sum(runs.values()) == 5, "nothing ran"
    forced = await run_batch(_counting_graph("g", runs, double=True), range(5), checkpoint=opener(), batch_id="b",
                             force=True)
    assert [item.output for item in forced.items] == [0, 4, 8, 12, 16] and forced.resumed == 0
    again = await run_batch(_counting_graph("g", runs, double=True), range(5), checkpoint=opener(), batch_id="b")
    assert again.resumed == 5 and sum(runs.values()) == 10


async def test_two_workers_share_a_batch_without_running_an_input_twice(opener):
    runs = Counter()
    graph = _counting_graph("shared", runs)
    results = {}

    async def worker(name):
        results[name] = await run_batch(graph, range(60), checkpoint=opener(), batch_id="b", concurrency=4)

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, "a")
        tg.start_soon(worker, "b")
    assert runs == Counter(range(60)), "every input ran exactly once"
    for result in results.values():
        assert [(item.index, item.output) for item in result.items] == [(i, 2 * i) for i in range(60)]
    assert results["a"].resumed + results["b"].resumed == 60  # each saw the other's inputs as finished

"""Opening a checkpoint never runs code, and whatever is wrong with it is one line saying what.

Crafted files (pickles, unexpected types), checkpoints of an older plait,
read-only files (as an unprivileged user: root writes anything), a full disk
(a real file-size limit on a real process), a missing driver, a server that
is not there; and results files: symlinks, directories, pipes.
"""

import json
import os
import pickle
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plait import CheckpointError, PostgresCheckpointer, SQLiteCheckpointer, run_batch
from plait.durable import StoredNode, StoredRun

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent


class _Boom:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plait(*args: str, unprivileged: bool = False, limit: int | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "plait.cli", *args]
    if unprivileged and os.geteuid() == 0:  # root without the capabilities that let it write any file
        drop = "-dac_override,-fowner"
        cmd = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", *cmd]

    def cap_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=HERE,
                          env=dict(os.environ, PIPELINE_LATENCY="0"), preexec_fn=cap_file_size if limit else None)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode in (1, 2) and len(lines) == 1 and lines[0].startswith("plait: error:"), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _checkpoint(path: Path) -> None:
    with SQLiteCheckpointer(path) as store:
        store.put_run(StoredRun("b/0", "g", "fp", b"{}"))
        store.save_node("b/0", StoredNode("a#0", b"h", b"1"))


def test_pickles_planted_in_a_checkpoint_never_run(tmp_path):
    path, marker = tmp_path / "c.db", tmp_path / "ran"
    _checkpoint(path)
    blob = pickle.dumps(_Boom(marker))
    db = sqlite3.connect(path)
    db.execute("UPDATE node_groups SET entries = ?", (blob,))
    db.execute("INSERT INTO node_groups (run_id, entries) VALUES ('b/1', ?)", (json.dumps([["a#0", "h", blob.hex(),
                                                                                             0, 0, 0, 0, 0.0, 1]]),))
    db.commit()
    db.close()
    with pytest.raises(CheckpointError, match="pickled node records") as info:
        SQLiteCheckpointer(path).load_nodes("b/0")
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert SQLiteCheckpointer(path).load_nodes("b/1")["a#0"].outcome == blob.hex()  # data, never loaded
    _one_line_error(_plait("runs", str(path)), "pickled node records", "start a new checkpoint")
    assert not marker.exists()


@pytest.mark.parametrize("table, column, value, message", [
    ("runs", "graph", b"\x80\x04evil", "a bytes as a run's graph"),
    ("runs", "status", "rm -rf", "with status 'rm -rf'"),
    ("runs", "input", 1.5, "a float as a run's input"),
    ("runs", "updated", "yesterday", "a str as the updated time of run 'b/0'"),
    ("node_groups", "entries", '{"not": "a list"}', "a node group that is not a JSON list"),
    ("node_groups", "entries", '[["a#0", 1, "x", 0, 0, 0, 0, 0.0, 1]]', "a node payload of type int"),
    ("node_groups", "entries", '[["a#0", "h", "x", "3", 0, 0, 0, 0.0, 1]]', "a node record that is not"),
    ("node_groups", "entries", '[["a#0", {"b64": "!!"}, "x", 0, 0, 0, 0, 0.0, 1]]', "a node payload of type dict"),
])
def test_unexpected_types_in_a_checkpoint_are_refused(tmp_path, table, column, value, message):
    path = tmp_path / "c.db"
    _checkpoint(path)
    db = sqlite3.connect(path)
    db.execute(f"UPDATE {table} SET {column} = ?", (value,))
    db.commit()
    db.close()
    with SQLiteCheckpointer(path) as store, pytest.raises(CheckpointError, match="which plait never writes") as info:
        store.list_runs("") if table == "runs" else store.load_nodes("b/0")
    assert message in str(info.value) and "\n" not in str(info.value)
    _one_line_error(_plait("runs", str(path)), message)


def test_a_checkpoint_of_an_older_plait_is_refused_without_unpickling(tmp_path):
    path, marker = tmp_path / "old.db", tmp_path / "ran"
    db = sqlite3.connect(path)  # the schema plait wrote before JSON records
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, graph TEXT NOT NULL, fingerprint TEXT NOT NULL,
            input BLOB NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL, output BLOB, error TEXT,
            created REAL NOT NULL, updated REAL NOT NULL);
        CREATE TABLE node_groups (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, entries BLOB NOT NULL);
        CREATE TABLE records (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
    """)
    blob = pickle.dumps(_Boom(marker))
    db.execute("INSERT INTO runs VALUES ('r', 'g', 'fp', ?, '', 'ok', ?, NULL, 0, 0)", (blob, blob))
    db.execute("INSERT INTO node_groups (run_id, entries) VALUES ('r', ?)", (blob,))
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="older plait .* pickles; they are not read"):
        SQLiteCheckpointer(path)
    _one_line_error(_plait("runs", str(path)), str(path), "older plait", "start a new checkpoint file")
    assert path.read_bytes() == before and not marker.exists()


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: os.mkfifo(p)], ids=["directory", "fifo"])
def test_a_checkpoint_path_that_is_not_a_file_is_refused(tmp_path, make):
    path = tmp_path / "runs.db"
    make(path)
    with pytest.raises(CheckpointError, match="is not a regular file"):
        SQLiteCheckpointer(path)


def test_a_read_only_checkpoint_is_reported_as_read_only(tmp_path):
    path = tmp_path / "runs.db"
    _checkpoint(path)
    path.chmod(0o444)
    before = path.read_bytes()
    line = _one_line_error(_plait("runs", str(path), unprivileged=True), "read-only", str(path))
    assert "corrupt" not in line and path.read_bytes() == before


def test_a_full_disk_is_one_line_and_a_resumable_state(tmp_path):
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(400)))
    args = ["run", "batch_pipeline.py:graph", "--inputs", str(inputs), "--checkpoint", str(tmp_path / "runs.db"),
            "--output", str(tmp_path / "results.jsonl"), "--concurrency", "8"]
    full = _plait(*args, limit=96 * 1024)
    line = _one_line_error(full, "cannot write", "free")  # SQLite says "disk I/O error", the file "File too large"
    assert str(tmp_path) in line
    resumed = _plait(*args)
    assert resumed.returncode == 1, resumed.stderr  # 1: the poisoned inputs
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(400))


def test_postgres_without_psycopg_says_what_to_install():
    code = ("import sys; sys.modules['psycopg'] = None; from plait.cli import main; "
            "sys.exit(main(['runs', 'postgresql://user:secret@db.example/plait']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    line = _one_line_error(proc, "pip install 'plait[postgres]'", "postgresql://user:***@db.example/plait")
    assert "secret" not in line


def test_an_unreachable_postgres_is_one_line_without_the_password(postgres_server):
    url = postgres_server.url.replace("postgres@", "postgres:secret@").replace(f":{postgres_server.port}/", ":1/")
    line = _one_line_error(_plait("runs", url), "cannot open checkpoint postgresql://postgres:***@")
    assert "secret" not in line


def test_unexpected_rows_in_postgres_are_refused(postgres_url):
    import psycopg

    with PostgresCheckpointer(postgres_url) as store:
        store.put_run(StoredRun("b/0", "g", "fp", b"{}"))
        store.save_node("b/0", StoredNode("a#0", b"h", b"1"))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE plait_runs SET input = %s", (pickle.dumps(_Boom(Path("/tmp/never"))),))
        conn.execute("UPDATE plait_node_groups SET entries = '[[1, 2]]'")
    with PostgresCheckpointer(postgres_url) as store:
        with pytest.raises(CheckpointError, match="a run input that plait did not write"):
            store.get_run("b/0")
        with pytest.raises(CheckpointError, match="a node record that is not"):
            store.load_nodes("b/0")


# -- results files ------------------------------------------------------------------------------------

async def test_a_symlinked_results_file_is_written_through(tmp_path):
    target, link = tmp_path / "data" / "results.jsonl", tmp_path / "results.jsonl"
    target.parent.mkdir()
    link.symlink_to(target)
    result = await run_batch(_graph(), range(3), output=link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert [json.loads(line)["output"] for line in target.read_text().splitlines()] == [0, 1, 2]
    assert result.ok == 3 and not list(tmp_path.glob("*.tmp")) and not list(target.parent.glob(".*.tmp"))


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: os.mkfifo(p)], ids=["directory", "fifo"])
async def test_a_results_path_that_is_not_a_file_is_a_usage_error(tmp_path, make):
    path = tmp_path / "results.jsonl"
    make(path)
    with pytest.raises(ValueError, match="results file .* is (a directory|not a regular file)"):
        await run_batch(_graph(), range(3), output=path)
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"x": 1}\n')
    proc = _plait("run", "batch_pipeline.py:graph", "--inputs", str(inputs), "--output", str(path))
    assert proc.returncode == 2
    _one_line_error(proc, "is a folder" if path.is_dir() else "results file")  # the CLI checks folders up front


def _graph():
    from plait import Graph

    g = Graph("identity")

    @g.node
    def same(x: int) -> int:
        return x

    return g


_OPEN_AT = """
import sys, time
from plait import SQLiteCheckpointer
start = float(sys.argv[2])
while time.time() < start:
    pass
store = SQLiteCheckpointer(sys.argv[1])
store.take_lease(sys.argv[3], "me", 4)
store.close()
"""


def test_processes_opening_a_new_checkpoint_at_once_all_succeed(tmp_path):
    # SQLite refuses a contended switch to WAL mode at once, without waiting: seen as
    # "stayed locked by another process" when two batch workers started on a new file.
    for round_ in range(6):
        path = tmp_path / f"runs{round_}.db"
        start = str(time.time() + 1.0)
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(path), start, f"k{i}"],
                                  stderr=subprocess.PIPE, text=True) for i in range(3)]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        store = SQLiteCheckpointer(path)
        assert not store.take_lease("k0", "other", 4), "each process's lease was committed"
        store.close()

"""A bad SQLite checkpoint file is refused and left untouched (what every store does: test_store_conformance)."""

import sqlite3

import pytest

from plait import CheckpointError, Graph, SQLiteCheckpointer
from plait.durable import StoredNode, StoredRun

pytestmark = pytest.mark.anyio


def test_sqlite_checkpoint_survives_reopen(tmp_path):
    path = tmp_path / "c.db"
    with SQLiteCheckpointer(path) as s:
        s.put_run(StoredRun("r", "g", "fp", b"i"))
        s.save_node("r", StoredNode("n#0", b"h", b"v", 1, 2, 0, 1, 0.1, 1))  # buffered; close() commits it
    with SQLiteCheckpointer(path) as s:
        assert s.get_run("r").graph == "g"
        assert s.load_nodes("r")["n#0"].completion_tokens == 2


def _refused(path, match):
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=match):
        SQLiteCheckpointer(path)
    assert path.read_bytes() == before, "a refused checkpoint must not be modified"


def test_garbage_file_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 50)
    _refused(path, "not a plait checkpoint")


def test_truncated_checkpoint_is_refused_untouched(tmp_path):
    path = tmp_path / "c.db"
    with SQLiteCheckpointer(path) as s:
        for i in range(300):
            s.put_run(StoredRun(f"r{i}", "g", "fp", b"x" * 500))
        s._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _refused(path, "corrupt|truncated")


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "app.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id INTEGER)")
    db.commit()
    db.close()
    _refused(path, "not a plait checkpoint")


def test_other_schema_version_is_refused(tmp_path):
    path = tmp_path / "c.db"
    SQLiteCheckpointer(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    _refused(path, "schema version 99")


def test_closed_checkpointer_says_so(tmp_path):
    s = SQLiteCheckpointer(tmp_path / "c.db")
    s.close()
    s.close()  # idempotent
    with pytest.raises(CheckpointError, match="closed"):
        s.get_run("r")


async def test_run_on_a_corrupt_checkpoint_fails_before_running(tmp_path):
    path = tmp_path / "c.db"
    path.write_bytes(b"\x00" * 4096)
    ran = []
    g = Graph("g")

    @g.node
    def a(x: int) -> int:
        ran.append(x)
        return x

    with pytest.raises(CheckpointError):
        await g.run(1, checkpoint=path, run_id="r")
    assert ran == [] and path.read_bytes() == b"\x00" * 4096

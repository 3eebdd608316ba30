"""`plait view` as a user runs it (a subprocess), its one-line errors, and pages from each kind of source."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
from view_traces import example_trace, load_example

from plait import run_batch

PLAIT = str(Path(sys.executable).with_name("plait"))


def _plait(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PLAIT, "view", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def _data(page: Path) -> dict:
    """The JSON a page embeds (as the browser's JSON.parse reads it)."""
    text = page.read_text()
    start = text.index('id="plait-data">') + len('id="plait-data">')
    return json.loads(text[start:text.index("</script>", start)])


def test_a_trace_becomes_one_self_contained_page(tmp_path):
    trace = example_trace("self_consistency", tmp_path)
    done = _plait(str(trace), "-o", "run.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = tmp_path / "run.html"
    assert done.stdout.strip() == "run.html"
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    assert "<script src" not in html and "<link" not in html
    data = _data(page)
    assert data["run"]["graph"] == "self_consistency" and data["run"]["status"] == "ok"
    assert data["output"]["answer"] == 55
    assert data["totals"]["generated"] > 0 and "scripted" in data["totals"]["models"]


def test_a_checkpoint_run_by_id_and_a_checkpoint_batch(tmp_path):
    module = load_example("batch_eval")
    inputs = [json.loads(line) for line in module.DATA.read_text().splitlines()][:3]
    anyio.run(lambda: run_batch(module.graph, inputs, backend=module.make_backend(), checkpoint=tmp_path / "r.db",
                                batch_id="b", output=tmp_path / "results.jsonl", id_field="id"))
    done = _plait("r.db", "--run-id", "b/1", "-o", "one.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = _data(tmp_path / "one.html")
    assert data["run"]["id"] == "b/1" and data["run"]["status"] == "ok"
    assert set(data["nodes"]) == set(module.graph.nodes)
    assert all(a["output"] is not None for a in data["acts"])

    done = _plait("r.db", "-o", "all.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "all_runs").iterdir()) == ["run-00001.html", "run-00002.html",
                                                                          "run-00003.html"]
    assert 'href="all_runs/run-00003.html"' in (tmp_path / "all.html").read_text()

    done = _plait("results.jsonl", "-o", "results.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "results.html").read_text().count("<td>-</td>") == 3  # a results file has no times
    first = _data(tmp_path / "results_runs" / "run-00001.html")
    assert first["output"] == json.loads((tmp_path / "results.jsonl").read_text().splitlines()[0])["output"]


def test_bad_sources_get_one_line_errors(tmp_path):
    trace = example_trace("dynamic_map", tmp_path)
    (tmp_path / "notes.txt").write_text("not a trace\n")
    (tmp_path / "list.jsonl").write_text("[1, 2]\n")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.commit()
    cases = {
        ("missing.jsonl",): "'missing.jsonl' does not exist",
        ("notes.txt",): "'notes.txt' is not a JSONL trace, a batch results file or a checkpoint",
        ("list.jsonl",): "'list.jsonl' is not a JSONL trace",
        (trace.name, "--run-id", "nope"): "run 'nope' is not in",
        ("other.db",): "not a plait checkpoint",
    }
    for args, message in cases.items():
        done = _plait(*args, "-o", "x.html", cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("plait: error: ") and message in lines[0], (args, lines)
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.html").exists()
    done = _plait(trace.name, "-o", "no/such/dir/x.html", cwd=tmp_path)
    assert done.returncode == 2 and "not an existing folder" in done.stderr


def test_write_view_raises_view_error_naming_the_source(tmp_path):
    import pytest

    from plait import PlaitError, write_view
    from plait.errors import ViewError

    (tmp_path / "empty.jsonl").write_text("")
    for source, message in [(tmp_path / "nope.jsonl", "does not exist"), (tmp_path / "empty.jsonl", "is not a JSONL")]:
        with pytest.raises(ViewError, match=message) as caught:
            write_view(source, tmp_path / "x.html")
        assert isinstance(caught.value, PlaitError) and str(source) in str(caught.value)


def test_a_postgres_checkpoint_gives_the_same_pages(tmp_path):
    import os

    import pytest

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "durable"))
    from pg_server import PostgresServer, unavailable

    from plait import write_view

    reason = unavailable()
    if reason is not None:
        if os.environ.get("PLAIT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PLAIT_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    module = load_example("batch_eval")
    inputs = [json.loads(line) for line in module.DATA.read_text().splitlines()][:2]
    with PostgresServer() as server:
        url = server.fresh_schema()
        anyio.run(lambda: run_batch(module.graph, inputs, backend=module.make_backend(), checkpoint=url,
                                    batch_id="pg", id_field="id"))
        write_view(url, tmp_path / "one.html", run_id="pg/0")
        write_view(url, tmp_path / "all.html")
    data = _data(tmp_path / "one.html")
    assert data["run"]["id"] == "pg/0" and set(data["nodes"]) == set(module.graph.nodes)
    assert sorted(p.name for p in (tmp_path / "all_runs").iterdir()) == ["run-00001.html", "run-00002.html"]


def test_a_trace_of_several_runs_gives_a_batch_page(tmp_path):
    from plait import write_view

    both = tmp_path / "both.jsonl"
    both.write_text(example_trace("dynamic_map", tmp_path).read_text()
                    + example_trace("subgraph", tmp_path).read_text())
    write_view(both, tmp_path / "both.html")
    html = (tmp_path / "both.html").read_text()
    assert html.count('class="batch-run"') == 2 and "2 runs: 2 ok" in html
    pages = sorted((tmp_path / "both_runs").iterdir())
    assert [_data(p)["run"]["graph"] for p in pages] == ["dynamic_map", "subgraph"]
    assert all(_data(p)["layout"]["edges"] for p in pages)  # trace pages: the full graph, not a checkpoint's


def test_graph_replays_a_checkpoint_and_is_refused_elsewhere(tmp_path):
    module = load_example("batch_eval")
    inputs = [json.loads(line) for line in module.DATA.read_text().splitlines()][:2]
    anyio.run(lambda: run_batch(module.graph, inputs, backend=module.make_backend(), checkpoint=tmp_path / "r.db",
                                batch_id="b", id_field="id"))
    target = str(Path(__file__).resolve().parents[2] / "examples" / "batch_eval.py") + ":graph"
    done = _plait("r.db", "--graph", target, "-o", "all.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    pages = sorted((tmp_path / "all_runs").iterdir())
    assert len(pages) == 2 and all(_data(p)["layout"]["edges"] and _data(p)["critical"] for p in pages)
    trace = example_trace("dynamic_map", tmp_path)
    other = str(Path(__file__).resolve().parents[2] / "examples" / "subgraph.py") + ":graph"
    for args, message in [((trace.name, "--graph", target), "--graph replays a checkpoint's runs"),
                          (("r.db", "--run-id", "b/0", "--graph", other), "was recorded for graph 'batch_eval'")]:
        done = _plait(*args, "-o", "x.html", cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("plait: error: ") \
            and message in lines[0], (args, done.stderr)

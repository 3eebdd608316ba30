"""The plait command: run, graph, --version, and every error path (one line, exit code 2)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plait.cli import main

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = str(ROOT / "examples" / "quickstart.py")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_prints_output_and_writes_trace(capsys, tmp_path):
    trace = tmp_path / "trace.jsonl"
    code, out, err = _run(capsys, "run", f"{QUICKSTART}:graph", "--input", '{"question": "What is 17 * 3 + 4?"}',
                          "--trace", str(trace), "--summary")
    assert code == 0
    assert json.loads(out) == {"model_answer": "55", "exact": 55, "agrees": True}
    assert "ask_model" in err and "tokens" in err
    kinds = [json.loads(line)["kind"] for line in trace.read_text().splitlines()]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"


def test_run_reads_input_from_file(capsys, tmp_path):
    path = tmp_path / "input.json"
    path.write_text('{"question": "What is 2 * 3?"}')
    code, out, _ = _run(capsys, "run", QUICKSTART, "--input", str(path))
    assert code == 0 and json.loads(out)["exact"] == 6


def test_graph_prints_mermaid_and_dot(capsys):
    code, out, _ = _run(capsys, "graph", f"{QUICKSTART}:graph")
    assert code == 0 and out.startswith("flowchart TD") and "ask_model -->" in out
    code, out, _ = _run(capsys, "graph", f"{QUICKSTART}:graph", "--format", "dot")
    assert code == 0 and out.startswith('digraph "quickstart"')


def test_dotted_module_target(capsys, tmp_path, monkeypatch):
    (tmp_path / "mygraphs.py").write_text(
        "from plait import Graph\ng = Graph('m')\ng.add(lambda x: x * 2, name='double')\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "run", "mygraphs:g", "--input", "21")
    assert code == 0 and out.strip() == "42"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "no_such_module_xyz:graph"], "cannot import module 'no_such_module_xyz'"),
        (["run", "missing_file.py:graph"], "no such file: missing_file.py"),
        (["run", f"{QUICKSTART}:nothing"], "has no attribute 'nothing'"),
        (["run", f"{QUICKSTART}:make_backend"], "is a ScriptedBackend, not a plait Graph"),
        (["run", f"{QUICKSTART}:graph", "--input", "{not json"], "--input is neither valid JSON"),
        (["run", f"{QUICKSTART}:graph", "--input", '{"question": 5}'], "input 'question' of graph 'quickstart'"),
        (["run", f"{QUICKSTART}:graph", "--input", '{"nope": 1}'], "has no input(s) nope; its inputs are: question"),
        (["run", f"{QUICKSTART}:graph"], "missing required input(s) question"),
        (["graph", ":graph"], "names no module"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("plait: error: ")
    assert message in err


def test_broken_module_and_invalid_graph(capsys, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('import-time failure')\n")
    code, _, err = _run(capsys, "run", f"{broken}:graph")
    assert code == 2 and "RuntimeError: import-time failure" in err and err.count("\n") == 1
    invalid = tmp_path / "invalid.py"
    invalid.write_text("from plait import Graph\ngraph = Graph('bad')\ngraph.add(lambda x: x, name='a')\n"
                       "graph.edge('a', 'ghost')\n")
    code, _, err = _run(capsys, "graph", f"{invalid}:graph")
    assert code == 2 and "unknown node 'ghost'" in err and err.count("\n") == 1


def test_failing_run_exits_1_with_one_line(capsys, tmp_path):
    failing = tmp_path / "failing.py"
    failing.write_text("from plait import Graph\ngraph = Graph('f')\n"
                       "def boom(x: int) -> int:\n    raise ValueError('bad thing')\ngraph.add(boom)\n")
    code, _, err = _run(capsys, "run", f"{failing}:graph", "--input", "1")
    assert code == 1 and err == "plait: run failed: node 'boom' failed: ValueError: bad thing\n"


def test_console_script_version_and_error_without_traceback():
    exe = Path(sys.executable).with_name("plait")
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("plait 0.")
    done = subprocess.run([str(exe), "run", "nowhere_module:graph"], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr

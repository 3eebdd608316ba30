"""The plait command in a real subprocess: every bad input is one line on stderr and exit 2, never a traceback.

User code (the target module, its graph factory, ``make_backend()``) may raise or call ``sys.exit``; paths
and run ids may be unusable; a reader may close the pipe early. Each case runs ``python -m plait.cli``.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = "from plait import Graph\ngraph = Graph('g')\ngraph.add(lambda x: x * 2, name='double')\n"

MODULES = {
    "good.py": GOOD,
    "factory_raises.py": "def graph():\n    raise RuntimeError('factory boom')\n",
    "factory_needs_arg.py": "def graph(n):\n    pass\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "backend_raises.py": GOOD + "def make_backend():\n    raise RuntimeError('no backend for you')\n",
    "backend_wrong.py": GOOD + "def make_backend():\n    return 42\n",
    "surrogate.py": "from plait import Graph\ngraph = Graph('g')\ngraph.add(lambda x: 'a\\ud800b', name='s')\n",
    "wide.py": "from plait import Graph\ngraph = Graph('g')\ngraph.add(lambda x: f'{x:0300d}', name='pad')\n",
}


@pytest.fixture
def folder(tmp_path):
    for name, text in MODULES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "one.jsonl").write_text("1\n2\n")
    (tmp_path / "my data.jsonl").write_text("1\n")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    (tmp_path / "latin1.json").write_bytes(b'"caf\xe9"')
    (tmp_path / "latin1.jsonl").write_bytes(b'"caf\xe9"\n')
    (tmp_path / "a_folder").mkdir()
    return tmp_path


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def _plait(folder: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plait.cli", *argv], cwd=folder, env=_env(),
                          capture_output=True, text=True, timeout=120)


def _assert_one_line_usage_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n"), done.stderr
    assert re.match(r"plait( run| graph)?: error: ", done.stderr), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr


@pytest.mark.parametrize("argv, fragments", [
    (["run", "factory_raises.py:graph"], ["graph factory factory_raises.py:graph() raised RuntimeError: factory boom"]),
    (["graph", "factory_raises.py:graph"], ["raised RuntimeError: factory boom"]),
    (["run", "factory_needs_arg.py:graph"], ["raised TypeError", "missing 1 required positional argument"]),
    (["run", "exits.py:graph"], ["importing module 'exits.py' called sys.exit(3)", "if __name__"]),
    (["run", "backend_raises.py:graph", "--input", "1"],
     ["make_backend() of module 'backend_raises.py' raised RuntimeError: no backend for you", "--model"]),
    (["run", "backend_wrong.py:graph", "--input", "1"], ["returned an object of type int, not a plait Backend"]),
])
def test_user_code_that_raises_or_exits(folder, argv, fragments):
    _assert_one_line_usage_error(_plait(folder, *argv), *fragments)


@pytest.mark.parametrize("argv, fragments", [
    (["--input", "1", "--trace", "missing/trace.jsonl"], ["--trace 'missing/trace.jsonl' is in 'missing', which is "
                                                          "not an existing folder"]),
    (["--input", "1", "--trace", "a_folder"], ["--trace 'a_folder' is a folder"]),
    (["--inputs", "one.jsonl", "--output", "missing/out.jsonl"], ["--output 'missing/out.jsonl' is in 'missing'"]),
    (["--inputs", "one.jsonl", "--output", "a_folder"], ["--output 'a_folder' is a folder"]),
    (["--input", "1", "--checkpoint", "missing/runs.db"], ["--checkpoint 'missing/runs.db' is in 'missing'"]),
])
def test_paths_to_write_that_cannot_be(folder, argv, fragments):
    _assert_one_line_usage_error(_plait(folder, "run", "good.py:graph", *argv), *fragments)
    assert list((folder / "a_folder").iterdir()) == [] and not (folder / "missing").exists()


@pytest.mark.parametrize("run_id, batch", [("a/b", False), ("a/b", True), ("../escape", False), ("line\nbreak", True),
                                            ("x" * 101, False)])
def test_unsafe_run_ids_are_refused(folder, run_id, batch):
    what = ["--inputs", "one.jsonl"] if batch else ["--input", "1"]
    done = _plait(folder, "run", "good.py:graph", *what, "--checkpoint", "runs.db", f"--run-id={run_id}")
    _assert_one_line_usage_error(done, f"--run-id {run_id!r} is not a safe run id", "letters, digits")
    assert not (folder / "runs.db").exists()


def test_safe_run_id_runs(folder):
    done = _plait(folder, "run", "good.py:graph", "--input", "4", "--checkpoint", "runs.db", "--run-id", "job-1.b_2")
    assert done.returncode == 0 and done.stdout == "8\n", done.stderr


def test_batch_id_from_an_unsafe_file_name_asks_for_run_id(folder):
    done = _plait(folder, "run", "good.py:graph", "--inputs", "my data.jsonl", "--checkpoint", "runs.db")
    _assert_one_line_usage_error(done, "the batch id 'my data' taken from the name of --inputs", "pass --run-id")
    done = _plait(folder, "run", "good.py:graph", "--inputs", "my data.jsonl", "--checkpoint", "runs.db",
                  "--run-id", "mydata")
    assert done.returncode == 0 and '"output": 2' in done.stdout, done.stderr


@pytest.mark.parametrize("argv, fragments", [
    (["--input", "1", "--deadline", "nan"], ["argument --deadline: expected a number of seconds > 0, got 'nan'"]),
    (["--input", "1", "--concurrency", "many"], ["argument --concurrency: invalid int value: 'many'",
                                                  "see plait run --help"]),
    (["--input", "deep.json"], ["--input file 'deep.json' nests JSON arrays or objects too deeply"]),
    (["--input", "[" * 100_000], ["--input nests JSON"]),
    (["--input", "latin1.json"], ["--input file 'latin1.json' is not UTF-8 text", "at byte 4"]),
    (["--inputs", "latin1.jsonl"], ["--inputs file 'latin1.jsonl' is not UTF-8 text"]),
    (["--inputs", "missing.jsonl"], ["cannot read --inputs file 'missing.jsonl'"]),
])
def test_bad_values_and_input_files(folder, argv, fragments):
    _assert_one_line_usage_error(_plait(folder, "run", "good.py:graph", *argv), *fragments)


def test_argparse_errors_are_one_line(folder):
    _assert_one_line_usage_error(_plait(folder, "run"), "the following arguments are required: target")
    _assert_one_line_usage_error(_plait(folder, "graph", "good.py:graph", "--format", "png"), "invalid choice")


def test_a_batch_line_nested_too_deeply_fails_alone(folder):
    done = _plait(folder, "run", "good.py:graph", "--inputs", "deep.jsonl")
    assert "Traceback" not in done.stderr and done.returncode == 1, done.stderr
    assert "line 1 of deep.jsonl nests JSON too deeply to read" in done.stdout


def test_lone_surrogates_in_output_are_escaped(folder):
    done = _plait(folder, "run", "surrogate.py:graph", "--input", "1")
    assert done.returncode == 0 and done.stdout == '"a\\ud800b"\n', done.stderr
    done = _plait(folder, "run", "surrogate.py:graph", "--inputs", "one.jsonl")
    assert done.returncode == 0 and done.stdout.count('"output": "a\\ud800b"') == 2, done.stderr


def test_batch_piped_into_head_exits_quietly(folder):
    # 2,000 result lines of ~380 bytes overflow any pipe buffer, so the batch is still writing when head leaves.
    (folder / "many.jsonl").write_text("".join(f"{i}\n" for i in range(2000)))
    plait = subprocess.Popen([sys.executable, "-m", "plait.cli", "run", "wide.py:graph", "--inputs", "many.jsonl"],
                             cwd=folder, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=plait.stdout, capture_output=True, timeout=120)
    plait.stdout.close()
    _, err = plait.communicate(timeout=120)
    assert head.stdout.count(b"\n") == 1 and b'"status": "ok"' in head.stdout
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
    assert plait.returncode == 0

"""`plait run` with --checkpoint, --run-id, --replay and --inputs: happy paths and every usage error."""

import json
import textwrap

import pytest

from plait.cli import main


MODULE = textwrap.dedent('''
    from pathlib import Path
    from plait import Graph, Request, RunContext, ScriptedBackend

    MARK = Path(__file__).with_name("broken")
    LOG = Path(__file__).with_name("ran.log")
    graph = Graph("twostep")

    @graph.node
    async def ask(q: str, ctx: RunContext) -> str:
        LOG.open("a").write("ask\\n")
        return (await ctx.generate(Request(prompt=q))).text

    @graph.node
    def shout(ask: str) -> str:
        LOG.open("a").write("shout\\n")
        if MARK.exists():
            raise RuntimeError("shout is broken")
        return ask.upper() + "!"

    graph.chain(ask, shout)

    def make_backend():
        return ScriptedBackend(lambda request: "answer to " + request.prompt_text())
''')


@pytest.fixture
def module(tmp_path):
    path = tmp_path / "twostep.py"
    path.write_text(MODULE)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _ran(module):
    log = module.with_name("ran.log")
    return log.read_text().split() if log.exists() else []


def test_resume_a_failed_run_by_id(capsys, module, tmp_path):
    db = tmp_path / "runs.db"
    module.with_name("broken").touch()
    code, _, err = _run(capsys, "run", f"{module}:graph", "--input", '"hi"', "--checkpoint", db)
    assert code == 1 and "shout is broken" in err
    run_id = err.split("run id ")[1].split()[0]
    module.with_name("broken").unlink()
    code, out, err = _run(capsys, "run", f"{module}:graph", "--checkpoint", db, "--run-id", run_id)
    assert code == 0 and json.loads(out) == "ANSWER TO HI!"
    assert _ran(module) == ["ask", "shout", "shout"]  # ask was restored, not run again


def test_replay_needs_no_model(capsys, module, tmp_path):
    db = tmp_path / "runs.db"
    code, out, _ = _run(capsys, "run", f"{module}:graph", "--input", '"yo"', "--checkpoint", db, "--run-id", "r1")
    assert code == 0 and json.loads(out) == "ANSWER TO YO!"
    module.write_text(MODULE.replace('return ScriptedBackend(lambda request: "answer to " + request.prompt_text())',
                                     'raise RuntimeError("no model here")'))
    code, out, err = _run(capsys, "run", f"{module}:graph", "--checkpoint", db, "--run-id", "r1", "--replay")
    assert code == 0, err
    assert json.loads(out) == "ANSWER TO YO!" and _ran(module) == ["ask", "shout", "ask", "shout"]


def test_batch_to_stdout(capsys, module, tmp_path):
    inputs = tmp_path / "qs.jsonl"
    inputs.write_text('"a"\n\n"b"\n')
    code, out, err = _run(capsys, "run", f"{module}:graph", "--inputs", inputs, "--concurrency", "2")
    assert code == 0
    rows = sorted((json.loads(line) for line in out.splitlines()), key=lambda r: r["index"])
    assert [(r["index"], r["output"]) for r in rows] == [(0, "ANSWER TO A!"), (1, "ANSWER TO B!")]
    assert "batch: 2 inputs, 2 ok, 0 failed" in err


@pytest.mark.parametrize("extra, message", [
    (["--input", '"x"', "--inputs", "in.jsonl"], "either --input"),
    (["--output", "o.jsonl"], "belong to batch runs"),
    (["--run-id", "r"], "need --checkpoint"),
    (["--replay", "--checkpoint", "c.db"], "--replay needs --run-id"),
    (["--inputs", "in.jsonl", "--concurrency", "0"], "--concurrency must be >= 1"),
    (["--inputs", "in.jsonl", "--trace", "t.jsonl"], "describe one run"),
    (["--inputs", "missing.jsonl"], "cannot read --inputs file"),
    (["--inputs", "empty.jsonl"], "has no inputs"),
    (["--input", '"x"', "--checkpoint", "notes.txt"], "not a plait checkpoint"),
    (["--checkpoint", "c.db", "--run-id", "nope", "--replay"], "nothing to replay"),
])
def test_usage_errors_exit_2_with_one_line(capsys, module, tmp_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('"x"\n')
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "notes.txt").write_text("my notes\n" * 10)
    code, out, err = _run(capsys, "run", f"{module}:graph", *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "notes.txt").read_text() == "my notes\n" * 10


def test_batch_eval_example_through_the_command_line(capsys, tmp_path):
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    out = tmp_path / "results.jsonl"
    argv = ["run", root / "examples" / "batch_eval.py:graph", "--inputs", root / "examples" / "data" /
            "arithmetic.jsonl", "--id-field", "id", "--output", out, "--checkpoint", tmp_path / "runs.db"]
    code, _, err = _run(capsys, *argv)
    assert code == 0 and "24 ok" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"q{i:02d}" for i in range(24)]
    assert sum(r["output"]["correct"] for r in rows) == 18  # the stand-in is wrong when the first operand % 5 == 0
    code, _, err = _run(capsys, *argv)
    assert code == 0 and "(24 finished earlier)" in err


def test_a_batch_resumed_with_another_graph_is_refused_unless_forced(capsys, module, tmp_path):
    db, inputs, out = tmp_path / "runs.db", tmp_path / "qs.jsonl", tmp_path / "out.jsonl"
    inputs.write_text('"a"\n"b"\n')
    batch = ["run", f"{module}:graph", "--inputs", inputs, "--checkpoint", db, "--run-id", "b", "--output", out]
    code, _, _ = _run(capsys, *batch)
    assert code == 0 and sorted(_ran(module)) == ["ask", "ask", "shout", "shout"]  # two inputs run concurrently
    module.write_text(MODULE.replace("return ask.upper() + \"!\"", "return ask.upper() + \"?\"").replace(
        "def shout(ask: str) -> str:", "def shout(ask: str) -> object:"))  # a new version: another output type
    code, _, err = _run(capsys, *batch)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "batch 'b' in the checkpoint was run with another graph" in err and "--force" in err
    assert [json.loads(line)["output"] for line in out.read_text().splitlines()] == ["ANSWER TO A!", "ANSWER TO B!"]
    code, _, err = _run(capsys, *batch, "--force")
    assert code == 0, err
    assert [json.loads(line)["output"] for line in out.read_text().splitlines()] == ["ANSWER TO A?", "ANSWER TO B?"]


def test_runs_lists_what_a_checkpoint_holds(capsys, module, tmp_path):
    db = tmp_path / "runs.db"
    inputs = tmp_path / "qs.jsonl"
    inputs.write_text('"a"\n"b"\n')
    module.with_name("broken").touch()
    code, _, _ = _run(capsys, "run", f"{module}:graph", "--inputs", inputs, "--checkpoint", db, "--run-id", "b")
    assert code == 1
    code, out, _ = _run(capsys, "runs", db, "--prefix", "b/")
    lines = out.strip().splitlines()
    assert code == 0 and lines[-1] == "2 run(s): 2 failed"
    assert lines[1].split()[:4] == ["b/0", "twostep", "failed", "1"]  # ask was committed before shout failed
    code, _, err = _run(capsys, "runs", tmp_path / "missing.db")
    assert code == 2 and "no checkpoint file" in err

"""``plait run --model small=URL --model large=URL``: named backends from the command line, on real local servers."""

import json
import sys
from pathlib import Path

import pytest

from plait.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent / "executors"))
from pool_servers import Replica  # noqa: E402  (real OpenAI-compatible servers that answer with their name)

GRAPH = '''
from plait import Graph, Request, RunContext

graph = Graph("pair")


@graph.node(model="small")
async def draft(q: str, ctx: RunContext) -> str:
    return (await ctx.generate(Request(prompt=q))).text


@graph.node(model="large")
async def verify(draft: str, ctx: RunContext) -> str:
    return draft + " then " + (await ctx.generate(Request(prompt=draft))).text


@graph.node
async def close(verify: str, ctx: RunContext) -> str:
    return verify + " then " + (await ctx.generate(Request(prompt="end"))).text


graph.chain(draft, verify, close)
'''


@pytest.fixture
def servers():
    with Replica("A") as a, Replica("B") as b, Replica("C") as c:
        yield a, b, c


@pytest.fixture
def target(tmp_path, monkeypatch):
    (tmp_path / "pair.py").write_text(GRAPH)
    monkeypatch.chdir(tmp_path)
    return "pair.py:graph"


def test_each_named_model_serves_its_nodes(servers, target, capsys):
    a, b, c = servers
    code = main(["run", target, "--input", '"hi"', "--model", f"small={a.url}", "--model", f"large={b.url}",
                 "--model", c.url, "--summary"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out) == "A then B then C"
    assert a.prompts == ["hi"] and b.prompts == ["A"] and c.prompts == ["end"]
    assert "tokens by model: small 4, large 4, default 4" in err


def test_a_batch_takes_named_models_too(servers, target, tmp_path, capsys):
    a, b, c = servers
    (tmp_path / "in.jsonl").write_text('"x"\n"y"\n')
    code = main(["run", target, "--inputs", "in.jsonl", "--model", f"small={a.url}", "--model", f"large={b.url}",
                 "--model", c.url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(json.loads(line)["output"] for line in out.splitlines()) == ["A then B then C"] * 2
    assert sorted(a.prompts) == ["x", "y"]


def test_a_missing_name_is_a_usage_error_naming_the_node_and_the_flag(servers, target, capsys):
    a, _, c = servers
    code = main(["run", target, "--input", '"hi"', "--model", f"small={a.url}", "--model", c.url])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "node 'verify' asks for model 'large', which this run lacks (its named backends: small)" in err
    assert "pass --model large=MODEL to the run" in err
    assert a.prompts == []  # refused before anything ran


@pytest.mark.parametrize("argv, message", [
    (["--model", "http://127.0.0.1:1", "--model", "http://127.0.0.1:2"], "--model without a name is given twice"),
    (["--model", "small=http://127.0.0.1:1", "--model", "small=http://127.0.0.1:2"],
     "--model small= is given twice"),
    (["--model", "small="], "--model small= names no model"),
    (["--model", "default=http://127.0.0.1:1"], "the default model takes no name"),
    (["--model", "small=no-such-model-xyz"], "--model small=no-such-model-xyz: "),
    (["--model", "small=http://127.0.0.1:1", "--inputs", "in.jsonl", "--checkpoint", "c.db", "--ray", "local"],
     "named models (--model NAME=MODEL) run in this process"),
])
def test_bad_model_flags_are_one_line_usage_errors(target, capsys, argv, message):
    code = main(["run", target, "--input", '"hi"', *argv] if "--inputs" not in argv else ["run", target, *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err

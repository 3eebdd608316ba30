"""The reasoning examples run on their scripted backends, in process and through `plait run`."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from plait import ScriptedBackend
from plait.planners import tree_call_key

ROOT = Path(__file__).resolve().parents[2]
PLAIT = str(Path(sys.executable).with_name("plait"))


def load(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_self_consistency_stops_after_one_wave_of_n_samples():
    module = load("self_consistency")
    backend = module.make_backend()
    result = anyio.run(lambda: module.graph.run({"question": "pens?"}, backend=backend))
    out = result.output
    assert out["answer"] == 55 and out["votes"] == {"55": 3.0, "45": 1.0}
    assert out["samples"] == 4 and out["stopped_early"] and out["agreement"] == 0.75
    assert [r.params.n for r in backend.requests] == [4]  # one wave, one prefill; the second wave never sent


def test_subtask_tree_example_prunes_and_reports_savings():
    module = load("subtask_tree")
    backend = module.make_backend()
    out = anyio.run(lambda: module.graph.run({"task": "legs?"}, backend=backend)).output
    assert out["parts"] == {"1": "24", "2": "12"} and "36" in out["answer"]
    assert out["calls"] == 4 and out["peak_context_tokens"] < out["unpruned_peak_context_tokens"]
    assert 0 < out["cache_hit_rate"] < 1
    assert sorted(tree_call_key(r.prompt) for r in backend.requests) == ["1", "2", "root", "root:conclude"]


def test_mixed_example_uses_chain_vote_and_tree():
    module = load("mixed_reasoning")
    backend = module.make_backend()
    result = anyio.run(lambda: module.graph.run({"problem": "eggs?"}, backend=backend))
    assert result.output == {"tree_answer": "50", "vote_answer": 50, "agree": True}
    assert {"facts", "frame", "tree", "vote", "reconcile"} <= set(result.nodes)
    vote_requests = [r for r in backend.requests if r.tag == "vote"]
    assert len(vote_requests) == 1 and vote_requests[0].params.n == 3  # unanimous first wave of 3: stop
    tree_prompt = next(r.prompt for r in backend.requests if r.tag == "tree")
    assert "Known quantities: 4 crates ; 12 eggs per crate" in tree_prompt


@pytest.mark.parametrize("target, value, check", [
    ("self_consistency.py:graph", {"question": "pens?"}, lambda out: out["answer"] == 55),
    ("subtask_tree.py:graph", {"task": "legs?"}, lambda out: out["parts"] == {"1": "24", "2": "12"}),
    ("mixed_reasoning.py:graph", {"problem": "eggs?"}, lambda out: out["agree"] is True),
])
def test_examples_through_the_cli(target, value, check):
    done = subprocess.run([PLAIT, "run", f"examples/{target}", "--input", json.dumps(value)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert check(json.loads(done.stdout))


def test_make_backend_returns_scripted_backends():
    for name in ("self_consistency", "subtask_tree", "mixed_reasoning"):
        assert isinstance(load(name).make_backend(), ScriptedBackend)

"""Runs examples/plan_execute_countries.py on its scripted backend."""

import importlib.util
from pathlib import Path

import anyio
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plan_execute_countries.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("plan_execute_countries", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_question_runs_as_a_parallel_plan(example):
    result = anyio.run(lambda: example.graph.run({"task": example.DEMO_TASK}, backend=example.make_backend()))
    out = result.output
    assert out.answer.startswith("Canada (3.46 vs 4.02 people per km2")
    assert out.evidence["E1"] == ["Australia"] and out.evidence["E2"] == ["Canada"]
    assert isinstance(out.evidence["E3"], example.Country) and out.evidence["E4"].capital == "Ottawa"
    assert out.evidence["E5"] == round(26_600_000 / 7_692_024, 6)
    assert result.tokens.requests == 2  # one planner call, one solver call


def test_tools_of_the_example(example):
    assert example.search("capital Canberra") == ["Australia"]
    assert example.calculator("(2 + 3) * 4 / 8") == 2.5
    with pytest.raises(ValueError, match="unsupported expression"):
        example.calculator("__import__('os')")
    with pytest.raises(KeyError, match="use search"):
        example.lookup("Atlantis")


def test_other_questions_fall_back_to_a_search_plan(example):
    backend = example.make_backend()
    result = anyio.run(lambda: example.graph.run({"task": "Which countries use the euro?"}, backend=backend))
    assert "Germany" in result.output.answer and "Japan" not in result.output.answer


def test_example_through_the_cli():
    import json
    import subprocess
    import sys

    plait_cmd = str(Path(sys.executable).with_name("plait"))
    done = subprocess.run(
        [plait_cmd, "run", "examples/plan_execute_countries.py:graph", "--input", json.dumps({"task": "x"})],
        capture_output=True, text=True, cwd=EXAMPLE.parents[1], timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["answer"] == "[]" and out["plans"][0]["steps"][0]["tool"] == "search"
    done = subprocess.run(
        [plait_cmd, "run", "examples/plan_execute_countries.py:graph", "--input",
         json.dumps({"task": "Which is more densely populated: Canberra's country or Ottawa's?"})],
        capture_output=True, text=True, cwd=EXAMPLE.parents[1], timeout=300,
    )
    out = json.loads(done.stdout)
    assert out["answer"].startswith("Canada") and out["evidence"]["E3"]["name"] == "Australia"

"""Every example in examples/ runs as a script and through `plait run`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
PLAIT = str(Path(sys.executable).with_name("plait"))


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_as_script(example):
    assert _run(sys.executable, str(example)).strip()


@pytest.mark.parametrize(
    "target, value, expected",
    [
        ("quickstart.py:graph", {"question": "What is 17 * 3 + 4?"}, {"model_answer": "55", "exact": 55,
                                                                      "agrees": True}),
        ("fanout_join.py:graph", "Wonderful orchestration everywhere", {"words": 3, "sentiment": "positive",
                                                                       "keywords": ["everywhere", "orchestration",
                                                                                    "wonderful"]}),
        ("conditional_route.py:graph", "What is 1 plus 2?", "Answer: the sum is 3"),
        ("bounded_loop.py:graph", {"topic": "plait"}, "Parallel graphs, careful answers."),
        ("subgraph.py:graph", "2+2 | Who wrote Hamlet", {"left": {"answer": "4", "confident": True},
                                                         "right": {"answer": "maybe Shakespeare",
                                                                   "confident": False}}),
        ("dynamic_map.py:graph", "a; bb", {"a": "7", "bb": "8"}),
    ],
)
def test_example_through_cli(target, value, expected):
    out = _run(PLAIT, "run", f"examples/{target}", "--input", json.dumps(value))
    assert json.loads(out) == expected

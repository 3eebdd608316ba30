"""Every example graph, recorded with its scripted backend, replays with no backend and no tools to the same output."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))

# each example's input, as its main() runs it (a name is looked up in the example module)
INPUTS = {
    "batch_eval": {"question": "What is 6 * 7?"},
    "bounded_loop": {"topic": "plait"},
    "conditional_route": "What is 2 plus 40?",
    "dynamic_map": "How long is this?; And this one?; Third",
    "fanout_join": "Wonderful orchestration everywhere",
    "hybrid_demo": {"problem": "PUZZLE"},
    "meetings": {"problem": "REQUEST"},
    "mixed_reasoning": {"problem": "A shop sells 4 crates of 12 eggs and then 7 more eggs. 5 eggs break. "
                                   "How many good eggs were sold?"},
    "nqueens": {"n": 8},
    "plan_execute_countries": {"task": "DEMO_TASK"},
    "quickstart": {"question": "What is 17 * 3 + 4?"},
    "self_consistency": {"question": "Ann has 17 boxes of 3 pens and 4 loose pens. How many pens?"},
    "subgraph": "2+2 | Who wrote Hamlet",
    "subtask_tree": {"task": "How many legs do 3 spiders and 2 ants have, and which has more legs in total?"},
    "sudoku": {"puzzle": "EASY"},
    "zebra": {"problem": "PUZZLE"},
}

pytestmark = pytest.mark.anyio


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"replayed_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _input(module, value):
    if isinstance(value, dict):
        return {k: _input(module, v) for k, v in value.items()}
    return getattr(module, value, value) if isinstance(value, str) and value.isupper() else value


def test_every_example_has_an_input():
    assert sorted(INPUTS) == [p.stem for p in EXAMPLES]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
async def test_example_replays_without_backend_or_tools(example, tmp_path, monkeypatch):
    module = _load(example)
    backend = module.make_backend() if hasattr(module, "make_backend") else None
    path = tmp_path / "runs.db"
    recorded = await module.graph.run(_input(module, INPUTS[example.stem]), backend=backend, checkpoint=path,
                                      run_id="r")
    assert recorded.status == "ok"

    def no_tool(**kwargs):
        raise AssertionError("a tool ran during a replay")

    for t in getattr(module, "TOOLS", ()):
        monkeypatch.setattr(t, "fn", no_tool)
        monkeypatch.setattr(t, "is_async", False)
    replayed = await module.graph.run(checkpoint=path, run_id="r", replay=True)
    assert _untimed(replayed.output) == _untimed(recorded.output)


def _untimed(value):
    """Drop wall-clock measurements (a solver's solve_time), which no replay repeats."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "solve_time"}
    if isinstance(value, (list, tuple)):
        return [_untimed(v) for v in value]
    return value

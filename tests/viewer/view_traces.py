"""Traces for the viewer tests: the examples run on their scripted backends, a failing run, hostile values."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import anyio

from plait import Graph, RetryPolicy, RunError, read_trace

ROOT = Path(__file__).resolve().parents[2]
INJECTED = '</script><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'

EXAMPLE_INPUTS = {
    "self_consistency": {"question": "Ann has 17 boxes of 3 pens and 4 loose pens. How many pens?"},
    "subtask_tree": {"task": "How many legs do 3 spiders and 2 ants have, and which has more legs in total?"},
    "plan_execute_countries": None,  # its DEMO_TASK
    "meetings": None,  # its REQUEST
    "subgraph": "2+2 | Who wrote Hamlet",
    "dynamic_map": "a; bb; ccc",
    "bounded_loop": {"topic": "plait"},
}


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"_view_example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example_trace(name: str, folder: Path) -> Path:
    """Run ``examples/<name>.py`` on its scripted backend with a JSONL trace; return the trace's path."""
    module = load_example(name)
    value = EXAMPLE_INPUTS[name]
    if value is None:
        value = {"task": module.DEMO_TASK} if hasattr(module, "DEMO_TASK") else {"problem": module.REQUEST}
    path = folder / f"{name}.jsonl"
    anyio.run(lambda: module.graph.run(value, backend=module.make_backend(), trace=path))
    return path


def failing_trace(folder: Path) -> Path:
    """A run whose middle node fails after a retry, so its dependant is skipped."""
    graph = Graph("failing")

    @graph.node
    def parse(text: str) -> int:
        return len(text)

    @graph.node(retry=RetryPolicy(attempts=2, backoff=0.0))
    def divide(parse: int) -> float:
        raise ZeroDivisionError(f"cannot share {parse} items among 0 people")

    @graph.node
    def report(divide: float) -> str:
        return f"{divide:.2f}"

    graph.chain(parse, divide, report)
    path = folder / "failing.jsonl"
    _run_failing(graph, "abc", path)
    return path


def injected_trace(folder: Path) -> Path:
    """A run whose model output, input and error carry a script injection; then, as a crafted trace would,
    its graph name, run id and a node name too (plait refuses such names, a hand-written trace need not)."""
    graph = Graph("inject")

    @graph.node
    def echo(text: str) -> str:
        return text + INJECTED

    @graph.node
    def boom(echo: str) -> str:
        raise ValueError(INJECTED)

    graph.chain(echo, boom)
    path = folder / "inject.jsonl"
    _run_failing(graph, {"text": INJECTED}, path)
    text = path.read_text().replace('"echo"', json.dumps("echo" + INJECTED))
    text = text.replace('"graph": "inject"', '"graph": ' + json.dumps("inject" + INJECTED))
    run_id = read_trace(path)[0]["run_id"]
    path.write_text(text.replace(json.dumps(run_id), json.dumps(run_id + INJECTED)))
    return path


def _run_failing(graph: Graph, value, path: Path) -> None:
    try:
        anyio.run(lambda: graph.run(value, trace=path))
    except RunError:
        pass  # the trace records the failure
    else:
        raise AssertionError(f"{graph.name!r} was meant to fail")


def activations(trace: Path) -> int:
    """Activations as the trace counts them: first attempts, skips and nodes restored from a checkpoint."""
    events = read_trace(trace)
    return sum(1 for e in events if (e["kind"] == "node_started" and e["attempt"] == 1)
               or e["kind"] == "node_skipped" or (e["kind"] == "node_finished" and e.get("restored")))


def shape_nodes(trace: Path) -> list[str]:
    """Every node of the traced graph, subgraph nodes as ``parent/child``."""
    shape = read_trace(trace)[0]["shape"]

    def walk(shape: dict, prefix: str) -> list[str]:
        names = []
        for node in shape["nodes"]:
            names.append(prefix + node["name"])
            if "graph" in node:
                names += walk(node["graph"], prefix + node["name"] + "/")
        return names

    return walk(shape, "")


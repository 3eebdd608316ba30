"""Property tests: random DAGs with random injected failures, checkpointed, reloaded and resumed."""

import tempfile
from pathlib import Path

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import Graph, Node, SQLiteCheckpointer
from plait.orchestrator import Param, Signature
from plait.durable._codec import load_json


class Step(Node):
    """Sums its inputs plus its own index; fails on demand; counts its executions."""

    def __init__(self, name: str, index: int, inputs: list[str], calls: dict, failing: set):
        super().__init__(name, on_error="skip")
        self.index, self.inputs, self.calls, self.failing = index, inputs, calls, failing

    def signature(self) -> Signature:
        return Signature({p: Param(p, int) for p in self.inputs}, int, None)

    async def invoke(self, ctx, kwargs):
        self.calls[self.name] = self.calls.get(self.name, 0) + 1
        if self.name in self.failing:
            raise RuntimeError(f"injected failure in {self.name}")
        return sum(kwargs.values()) + self.index


@st.composite
def dags(draw):
    n = draw(st.integers(2, 10))
    parents = [[]] + [sorted(draw(st.sets(st.integers(0, j - 1), max_size=3))) for j in range(1, n)]
    failing = draw(st.sets(st.integers(0, n - 1), max_size=n // 2))
    return parents, failing


def build(parents, calls, failing) -> Graph:
    g = Graph("random")
    nodes = []
    for j, ps in enumerate(parents):
        inputs = [f"n{p}" for p in ps] or ["x"]
        nodes.append(g.add(Step(f"n{j}", j, inputs, calls, failing)))
    for j, ps in enumerate(parents):
        for p in ps:
            g.edge(nodes[p], nodes[j], param=f"n{p}")
    return g


def reference(parents, x: int) -> list[int]:
    values = []
    for j, ps in enumerate(parents):
        values.append((sum(values[p] for p in ps) if ps else x) + j)
    return values


def doomed(parents, failing) -> set[int]:
    """Nodes that fail or depend (transitively) on one that does."""
    out = set()
    for j, ps in enumerate(parents):
        if j in failing or any(p in out for p in ps):
            out.add(j)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(), st.integers(-5, 5))
def test_random_dag_failures_checkpoint_and_resume(dag, x):
    parents, failing_idx = dag
    failing = {f"n{j}" for j in failing_idx}
    calls: dict[str, int] = {}
    expect = reference(parents, x)
    bad = doomed(parents, failing_idx)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.db"
        result = anyio.run(lambda: build(parents, calls, failing).run(x, checkpoint=path, run_id="r"))
        for j in range(len(parents)):
            name, record = f"n{j}", result.nodes[f"n{j}"]
            if j not in bad:
                assert record.status == "ok" and calls[name] == 1 and record.output == expect[j]
            elif j in failing_idx and not any(p in bad for p in parents[j]):
                assert record.status == "failed" and calls[name] == 1
                assert f"injected failure in {name}" in record.error
            else:
                assert record.status == "skipped" and name not in calls, "a dependant of a failed node ran"
        # the checkpoint reloads to exactly the completed nodes and their outputs
        with SQLiteCheckpointer(path) as store:
            stored = {k: load_json(v.outcome, k)["value"] for k, v in store.load_nodes("r").items()}
            assert store.get_run("r").status == ("partial" if bad else "ok")
        assert stored == {f"n{j}#0": expect[j] for j in range(len(parents)) if j not in bad}
        # resume with the faults cleared: finished nodes are restored, the rest run once
        before = dict(calls)
        failing.clear()
        resumed = anyio.run(lambda: build(parents, calls, failing).run(checkpoint=path, run_id="r"))
        for j in range(len(parents)):
            name = f"n{j}"
            assert resumed.nodes[name].output == expect[j]
            ran_again = calls.get(name, 0) - before.get(name, 0)
            assert ran_again == (1 if j in bad else 0), (name, ran_again)

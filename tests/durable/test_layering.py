"""The orchestrator reaches durability only through its Journal protocol; nothing in plait unpickles."""

import ast
from pathlib import Path

import pytest

from plait import Graph, MemoryCheckpointer
from plait.orchestrator import _journal

PLAIT = Path(__file__).resolve().parents[2] / "plait"

pytestmark = pytest.mark.anyio


def _imports(path: Path) -> list[str]:
    """Every module an import statement in ``path`` names (nested imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_nothing_under_orchestrator_imports_durable_or_the_top_level_package():
    offenders = {str(p.relative_to(PLAIT)): name for p in (PLAIT / "orchestrator").rglob("*.py")
                 for name in _imports(p) if name == "plait" or name.startswith("plait.durable")}
    assert offenders == {}
    assert "plait.durable" not in (PLAIT / "orchestrator" / "_runtime.py").read_text()


def test_no_module_of_plait_imports_pickle():
    offenders = sorted(str(p.relative_to(PLAIT)) for p in PLAIT.rglob("*.py")
                       if any(n.split(".")[0] in ("pickle", "cPickle", "dill", "shelve", "marshal")
                               for n in _imports(p)))
    assert offenders == []


async def test_runs_go_through_the_registered_opener(monkeypatch):
    """Run(checkpoint=...) asks the opener plait.durable registered; another implementation can take its place."""
    opened = []
    real = _journal._opener[0]

    def opener(graph, plan, checkpoint, **options):
        opened.append((graph.name, checkpoint, options))
        return real(graph, plan, checkpoint, **options)

    monkeypatch.setattr(_journal, "_opener", [opener])
    g = Graph("g")

    @g.node
    def a(x: int) -> int:
        return x + 1

    store = MemoryCheckpointer()
    assert (await g.run(1, checkpoint=store, run_id="r")).output == 2
    assert opened == [("g", store, {"run_id": "r", "replay": False, "cache": True})]
    assert (await g.run(1)).output == 2 and len(opened) == 1  # no checkpoint: the do-nothing journal
    assert store.get_run("r").status == "ok"

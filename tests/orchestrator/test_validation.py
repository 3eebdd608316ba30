"""Build-time validation: every problem is reported, and each names the nodes involved."""

import networkx as nx
import pytest
from pydantic import BaseModel

from plait import Graph, GraphValidationError, InputValidationError, Route
from plait.errors import GraphError


def _problems(graph: Graph) -> list[str]:
    with pytest.raises(GraphValidationError) as info:
        graph.validate()
    return info.value.problems


def test_valid_graph_returns_networkx_digraph():
    g = Graph("ok")
    a = g.add(lambda x: x, name="a")
    b = g.add(lambda a: a, name="b")
    g.edge(a, b)
    dg = g.validate()
    assert isinstance(dg, nx.DiGraph)
    assert list(dg.edges) == [("a", "b")]
    assert dg.edges["a", "b"]["param"] == "a"


def test_unknown_node_in_edge_is_named():
    g = Graph("unknown")
    g.add(lambda x: x, name="a")
    g.edge("a", "ghost")
    (problem,) = _problems(g)
    assert "'a' -> 'ghost'" in problem and "unknown node 'ghost'" in problem


def test_dangling_route_target_is_named():
    g = Graph("dangling")

    @g.node
    def pick(x: int) -> Route[int]:
        return Route("missing", x)

    g.route(pick, ["missing", "also_missing"])
    problems = _problems(g)
    assert len(problems) == 2
    assert any("'missing'" in p for p in problems) and any("'also_missing'" in p for p in problems)


def test_unbounded_cycle_is_rejected_with_its_path():
    g = Graph("cycle")
    a = g.add(lambda x=0, c=0: x, name="a")
    b = g.add(lambda a: a, name="b")
    c = g.add(lambda b: b, name="c")
    g.edge(a, b).edge(b, c).edge(c, a, param="c")
    (problem,) = _problems(g)
    assert "cycle" in problem and "no bound" in problem
    for name in ("a", "b", "c"):
        assert name in problem


def test_loop_that_closes_no_cycle_is_rejected():
    g = Graph("fake_loop")
    a = g.add(lambda x: x, name="a")
    b = g.add(lambda back=0: back, name="b")
    g.loop(a, back_to=b, max_iterations=2)
    (problem,) = _problems(g)
    assert "'a' -> 'b'" in problem and "closes no cycle" in problem


def test_unreachable_node_with_declared_start():
    g = Graph("unreachable")
    a = g.add(lambda x: x, name="a")
    b = g.add(lambda a: a, name="b")
    g.add(lambda y: y, name="island")
    g.edge(a, b).start(a)
    (problem,) = _problems(g)
    assert "'island' is unreachable" in problem and "'a'" in problem


def test_type_mismatch_caught_at_build_time():
    g = Graph("types")

    @g.node
    def count(text: str) -> int:
        return len(text)

    @g.node
    def shout(count: str) -> str:
        return count.upper()

    g.edge(count, shout)
    (problem,) = _problems(g)
    assert problem == "type mismatch on edge 'count' -> 'shout': 'count' outputs int but shout.count expects str"


def test_compatible_types_pass():
    class Answer(BaseModel):
        text: str

    g = Graph("compatible")

    @g.node
    def a(x: int) -> int:
        return x

    @g.node
    def b(a: float | None) -> list[Answer]:
        return [Answer(text=str(a))]

    @g.node
    def c(b: list[Answer]) -> str:
        return b[0].text

    g.chain(a, b, c)
    g.validate()


def test_map_over_non_list_is_rejected():
    g = Graph("map_types")

    @g.node
    def a2(x: int) -> int:
        return x

    @g.node
    def each(item: int) -> int:
        return item

    g.map(a2, each)
    (problem,) = _problems(g)
    assert "map 'a2' -> 'each'" in problem and "not a list" in problem


def test_map_item_type_checked():
    g = Graph("map_items")

    @g.node
    def words(x: str) -> list[str]:
        return x.split()

    @g.node
    def each(item: int) -> int:
        return item

    g.map(words, each)
    (problem,) = _problems(g)
    assert "'words' -> 'each'" in problem and "outputs str" in problem and "expects int" in problem


def test_ambiguous_and_unknown_parameters_are_named():
    g = Graph("params")
    a = g.add(lambda x: x, name="a")
    two = g.add(lambda left, right: left, name="two")
    g.edge(a, two)
    g.edge(a, two, param="middle")
    problems = _problems(g)
    assert any("'a' -> 'two'" in p and "several inputs (left, right)" in p for p in problems)
    assert any("no input 'middle'" in p for p in problems)


def test_loop_back_parameter_needs_default():
    g = Graph("loop_default")
    head = g.add(lambda x, feedback: x, name="head")
    check = g.add(lambda head: Route("head", head), name="check")
    g.edge(head, check)
    g.loop(check, back_to=head, param="feedback", max_iterations=2)
    problems = _problems(g)
    assert any("head.feedback" in p and "first iteration" in p for p in problems)


def test_all_problems_are_collected_at_once():
    g = Graph("many")

    @g.node
    def a(x: int) -> int:
        return x

    @g.node
    def b(a: str) -> str:
        return a

    g.edge(a, b).edge(a, "ghost")
    with pytest.raises(GraphValidationError) as info:
        g.validate()
    assert len(info.value.problems) == 2
    assert "2 problem(s)" in str(info.value)


def test_empty_graph_and_duplicate_names():
    with pytest.raises(GraphValidationError, match="no nodes"):
        Graph("empty").validate()
    g = Graph("dups")
    g.add(lambda x: x, name="a")
    with pytest.raises(GraphError, match="already has a node named 'a'"):
        g.add(lambda y: y, name="a")


def test_bad_policies_rejected_early():
    g = Graph("policy")
    with pytest.raises(GraphError, match="timeout"):
        g.add(lambda x: x, name="t", timeout=0)
    with pytest.raises(GraphError, match="on_error"):
        g.add(lambda x: x, name="e", on_error="ignore")
    with pytest.raises(GraphError, match="max_iterations"):
        g.loop("a", back_to="b", max_iterations=0)


def test_run_input_errors_are_clear():
    g = Graph("inputs")

    @g.node
    def add(a: int, b: int = 1) -> int:
        return a + b

    @g.node
    def other(c: str, add: int) -> str:
        return c * add

    g.edge(add, other)
    with pytest.raises(InputValidationError, match=r"missing required input\(s\) c .*other"):
        g.stream({"a": 1})
    with pytest.raises(InputValidationError, match="no input.* zzz"):
        g.stream({"a": 1, "c": "x", "zzz": 2})
    with pytest.raises(InputValidationError, match="input 'a'.*valid integer"):
        g.stream({"a": "not a number", "c": "x"})
    with pytest.raises(InputValidationError, match="pass a dict"):
        g.stream(5)

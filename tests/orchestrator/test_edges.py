"""Each edge kind: sequential, fan-out, join, route, dynamic map, bounded loop, subgraph."""

import pytest

from plait import Graph, Route
from plait.errors import LoopLimitError
from plait.orchestrator import NodeSkipped

pytestmark = pytest.mark.anyio


async def test_sequential_chain_passes_values_along():
    g = Graph("chain")

    @g.node
    def one(x: int) -> int:
        return x + 1

    @g.node
    async def two(one: int) -> int:
        return one * 10

    @g.node
    def three(two: int) -> str:
        return f"<{two}>"

    g.chain(one, two, three)
    result = await g.run(4)
    assert result.output == "<50>"
    assert [result[n] for n in ("one", "two", "three")] == [5, 50, "<50>"]
    assert result.status == "ok"


async def test_fan_out_and_join_by_parameter_name():
    g = Graph("diamond")
    seen = []

    @g.node
    def src(x: int) -> int:
        return x

    @g.node
    def double(src: int) -> int:
        seen.append("double")
        return src * 2

    @g.node
    def square(src: int) -> int:
        seen.append("square")
        return src * src

    @g.node
    def total(double: int, square: int) -> int:
        return double + square

    g.fan_out(src, double, square).join([double, square], total)
    result = await g.run({"x": 3})
    assert result.output == 6 + 9
    assert sorted(seen) == ["double", "square"]


async def test_join_with_explicit_parameter_mapping():
    g = Graph("join_map")
    a = g.add(lambda x: x + 1, name="a")
    b = g.add(lambda x: x - 1, name="b")

    @g.node
    def both(left: int, right: int) -> list[int]:
        return [left, right]

    g.join({"left": a, "right": b}, both)
    assert (await g.run({"x": 10})).output == [11, 9]


async def test_route_takes_one_branch_and_skips_the_other():
    g = Graph("route")

    @g.node
    def pick(n: int) -> Route[int]:
        return Route("even" if n % 2 == 0 else "odd", n)

    @g.node
    def even(n: int) -> str:
        return f"{n} is even"

    @g.node
    def odd(n: int) -> str:
        return f"{n} is odd"

    @g.node
    def after_odd(odd: str) -> str:
        return odd.upper()

    @g.node
    def done(text: str) -> str:
        return text

    g.route(pick, [even, odd]).edge(odd, after_odd)
    g.edge(even, done, param="text").edge(after_odd, done, param="text")
    result = await g.run(4)
    assert result.output == "4 is even"
    assert result.nodes["odd"].status == "skipped"
    assert result.nodes["after_odd"].status == "skipped"
    skipped = {e.node for e in result.events if isinstance(e, NodeSkipped)}
    assert skipped == {"odd", "after_odd"}
    assert (await g.run(7)).output == "7 IS ODD"


async def test_route_with_selector_function():
    g = Graph("route_by")

    @g.node
    def score(text: str) -> int:
        return len(text)

    long_ = g.add(lambda score: f"long ({score})", name="long")
    short = g.add(lambda score: f"short ({score})", name="short")
    g.route(score, {"long": long_, "short": short}, by=lambda n: "long" if n > 5 else "short")
    g.output(long_)
    assert (await g.run("abcdefgh")).output == "long (8)"
    res = await g.run("ab")
    assert res.output is None and res["short"] == "short (2)"


async def test_route_to_undeclared_target_fails_with_names():
    from plait import NodeFailedError

    g = Graph("bad_route")

    @g.node
    def pick(x: int) -> Route[int]:
        return Route("nowhere", x)

    g.route(pick, [g.add(lambda pick: pick, name="somewhere")])
    with pytest.raises(NodeFailedError, match="nowhere.*somewhere"):
        await g.run(1)


async def test_dynamic_map_width_decided_at_run_time():
    g = Graph("map")

    @g.node
    def split(text: str) -> list[str]:
        return text.split()

    @g.node
    async def shout(word: str) -> str:
        return word.upper()

    @g.node
    def glue(shout: list[str]) -> str:
        return "-".join(shout)

    g.map(split, shout).edge(shout, glue)
    result = await g.run("a bb ccc dddd")
    assert result.output == "A-BB-CCC-DDDD"
    assert result.nodes["shout"].runs == 4
    assert (await g.run("")).output == ""


async def test_map_shares_other_inputs_across_items():
    g = Graph("map_shared")

    @g.node
    def items(n: int) -> list[int]:
        return list(range(n))

    @g.node
    def scale(item: int, factor: int) -> int:
        return item * factor

    g.map(items, scale, param="item")
    assert (await g.run({"n": 4, "factor": 3})).output == [0, 3, 6, 9]


def _refine_graph(max_iterations: int, accept_at: int, on_limit: str = "raise") -> Graph:
    g = Graph("refine")

    @g.node
    def draft(seed: int, feedback: int = 0) -> int:
        return seed + feedback

    @g.node
    def check(draft: int) -> Route[int]:
        return Route("final", draft) if draft >= accept_at else Route("draft", draft + 1)

    @g.node
    def final(value: int) -> int:
        return value

    g.edge(draft, check)
    g.loop(check, back_to=draft, param="feedback", exit=final, exit_param="value",
           max_iterations=max_iterations, on_limit=on_limit)
    return g


async def test_bounded_loop_iterates_until_valid():
    result = await _refine_graph(max_iterations=5, accept_at=3).run({"seed": 1})
    # seed 1 -> draft 1 -> feedback 2 -> draft 3 -> accepted
    assert result.output == 3
    assert result.nodes["draft"].outputs == [1, 3]
    assert result.nodes["check"].routes == ["draft", "final"]


def _spin_graph(max_iterations: int, on_limit: str = "raise") -> Graph:
    """A loop whose check is never satisfied."""
    g = Graph("spin")

    @g.node
    def draft(seed: int, feedback: int = 0) -> int:
        return seed + feedback

    @g.node
    def check(draft: int) -> Route[int]:
        return Route("draft", draft)

    @g.node
    def final(check: int) -> int:
        return check

    g.edge(draft, check)
    g.loop(check, back_to=draft, param="feedback", exit=final, max_iterations=max_iterations, on_limit=on_limit)
    return g


async def test_bounded_loop_limit_hit_raises_with_partial_results():
    with pytest.raises(LoopLimitError, match="'check' -> 'draft'.*3") as info:
        await _spin_graph(3).run({"seed": 1})
    partial = info.value.partial
    assert partial.status == "failed"
    assert partial.nodes["draft"].runs == 4  # first pass plus three loop iterations
    assert partial.nodes["final"].status == "pending"


async def test_bounded_loop_on_limit_exit_leaves_with_last_value():
    result = await _spin_graph(2, on_limit="exit").run({"seed": 1})
    assert result.nodes["draft"].outputs == [1, 2, 3]
    assert result.output == 3


async def test_loop_body_with_inner_join_waits_for_fresh_values():
    g = Graph("loop_join")

    @g.node
    def head(x: int, again: int = 0) -> int:
        return x + again

    left = g.add(lambda head: head * 2, name="left")
    right = g.add(lambda head: head * 3, name="right")

    @g.node
    def merge(left: int, right: int) -> Route[int]:
        return Route("head", left + right) if left + right < 20 else Route("out", left + right)

    out = g.add(lambda merge: merge, name="out")
    g.fan_out(head, left, right).join([left, right], merge)
    g.loop(merge, back_to=head, param="again", exit=out, max_iterations=5)
    result = await g.run({"x": 2})
    # head=2 -> 4+6=10 -> head=2+10=12 -> 24+36=60 -> out
    assert result.output == 60
    assert result.nodes["head"].outputs == [2, 12]
    assert result.nodes["merge"].runs == result.nodes["left"].runs == result.nodes["right"].runs == 2


async def test_subgraph_runs_as_one_node():
    inner = Graph("inner")

    @inner.node
    def inc(v: int) -> int:
        return v + 1

    @inner.node
    def dbl(inc: int) -> int:
        return inc * 2

    inner.chain(inc, dbl)

    outer = Graph("outer")

    @outer.node
    def start(n: int) -> int:
        return n

    sub = outer.add(inner)

    @outer.node
    def finish(inner: int) -> str:
        return f"result={inner}"

    outer.edge(start, sub, param="v").edge(sub, finish)
    result = await outer.run(4)
    assert result.output == "result=10"
    assert result.nodes["inner/inc"].output == 5
    assert result.nodes["inner/dbl"].output == 10
    assert result.nodes["inner"].output == 10


async def test_same_subgraph_used_twice_keeps_records_apart():
    inner = Graph("twice")
    inner.add(lambda q: q * 2, name="work")
    outer = Graph("outer2")
    a = outer.add(inner, name="a")
    b = outer.add(inner, name="b")
    both = outer.add(lambda a, b: (a, b), name="both")
    outer.join([a, b], both)
    result = await outer.run({"q": 21})
    assert result.output == (42, 42)
    assert {"a/work", "b/work"} <= set(result.nodes)

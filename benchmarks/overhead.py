"""Pure orchestration overhead: plait vs LangGraph on the same shapes, zero-latency nodes.

Shapes: a 3-node chain, a 5-way fan-out plus join, sequential chains of 10,
100 and 1,000 nodes (cost per node must stay flat), and a 100-wide dynamic
fan-out (plait ``map``; LangGraph ``Send``). Each figure is the median over
rounds of the mean time per graph invocation, in microseconds. Two plait-only
rows price sync nodes: a 100-node chain of plain ``def`` nodes (each runs in a
worker thread, the default) and the same declared cheap (``blocking=False``:
called on the event loop).

    python benchmarks/overhead.py [--json out.json] [--rounds 7]

LangGraph comes from the ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import operator
import statistics
import time
from typing import Annotated, Any, TypedDict

import anyio

from plait import Graph

# -- plait shapes ----------------------------------------------------------------


def plait_chain(n: int) -> Graph:
    g = Graph(f"chain{n}")
    nodes = []
    for i in range(n):
        async def step(x: int) -> int:
            return x + 1
        nodes.append(g.add(step, name=f"n{i}"))
    g.chain(*nodes)
    return g


def plait_sync_chain(n: int, blocking: bool) -> Graph:
    g = Graph(f"sync_chain{n}")
    nodes = []
    for i in range(n):
        def step(x: int) -> int:
            return x + 1
        nodes.append(g.add(step, name=f"n{i}", blocking=blocking))
    g.chain(*nodes)
    return g


def plait_fanout(width: int) -> Graph:
    g = Graph("fanout")

    async def src(x: int) -> int:
        return x

    source = g.add(src)
    branches = []
    for i in range(width):
        async def branch(src: int) -> int:
            return src + 1
        branches.append(g.add(branch, name=f"b{i}"))

    async def join(**kwargs: int) -> int:  # replaced below: plait needs named inputs
        return 0

    params = ", ".join(f"b{i}: int" for i in range(width))
    scope: dict[str, Any] = {}
    exec(f"async def join({params}) -> int:\n    return {' + '.join(f'b{i}' for i in range(width))}", scope)
    g.fan_out(source, *branches).join(branches, g.add(scope["join"]))
    return g


def plait_map(width: int) -> Graph:
    g = Graph("map")

    async def items(x: int) -> list[int]:
        return list(range(width))

    async def work(item: int) -> int:
        return item * 2

    async def total(work: list[int]) -> int:
        return sum(work)

    g.map(g.add(items), g.add(work)).edge(work, total)
    return g


# -- LangGraph shapes --------------------------------------------------------------


def langgraph_chain(n: int):
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        x: int

    async def step(state: State) -> dict:
        return {"x": state["x"] + 1}

    builder = StateGraph(State)
    for i in range(n):
        builder.add_node(f"n{i}", step)
    builder.add_edge(START, "n0")
    for i in range(n - 1):
        builder.add_edge(f"n{i}", f"n{i + 1}")
    builder.add_edge(f"n{n - 1}", END)
    return builder.compile()


def langgraph_fanout(width: int):
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        x: int
        parts: Annotated[list[int], operator.add]
        total: int

    async def src(state: State) -> dict:
        return {"x": state["x"]}

    async def branch(state: State) -> dict:
        return {"parts": [state["x"] + 1]}

    async def join(state: State) -> dict:
        return {"total": sum(state["parts"])}

    builder = StateGraph(State)
    builder.add_node("src", src)
    builder.add_node("join", join)
    builder.add_edge(START, "src")
    for i in range(width):
        builder.add_node(f"b{i}", branch)
        builder.add_edge("src", f"b{i}")
    builder.add_edge([f"b{i}" for i in range(width)], "join")
    builder.add_edge("join", END)
    return builder.compile()


def langgraph_map(width: int):
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    class State(TypedDict):
        x: int
        items: list[int]
        results: Annotated[list[int], operator.add]
        total: int

    async def items(state: State) -> dict:
        return {"items": list(range(width))}

    async def work(state: dict) -> dict:
        return {"results": [state["item"] * 2]}

    async def total(state: State) -> dict:
        return {"total": sum(state["results"])}

    builder = StateGraph(State)
    builder.add_node("items", items)
    builder.add_node("work", work)
    builder.add_node("total", total)
    builder.add_edge(START, "items")
    builder.add_conditional_edges("items", lambda s: [Send("work", {"item": i}) for i in s["items"]], ["work"])
    builder.add_edge("work", "total")
    builder.add_edge("total", END)
    return builder.compile()


# -- measurement -----------------------------------------------------------------

SHAPES = {
    # name: (plait builder, langgraph builder, plait input, langgraph input, nodes, invocations per round)
    "chain3": (lambda: plait_chain(3), lambda: langgraph_chain(3), 0, {"x": 0}, 3, 200),
    "fanout5_join": (lambda: plait_fanout(5), lambda: langgraph_fanout(5), 0, {"x": 0, "parts": []}, 7, 200),
    "chain10": (lambda: plait_chain(10), lambda: langgraph_chain(10), 0, {"x": 0}, 10, 100),
    "chain100": (lambda: plait_chain(100), lambda: langgraph_chain(100), 0, {"x": 0}, 100, 10),
    "chain1000": (lambda: plait_chain(1000), lambda: langgraph_chain(1000), 0, {"x": 0}, 1000, 2),
    "map100": (lambda: plait_map(100), lambda: langgraph_map(100), 0, {"x": 0, "results": []}, 102, 10),
    "sync100_thread": (lambda: plait_sync_chain(100, True), None, 0, None, 100, 10),
    "sync100_inline": (lambda: plait_sync_chain(100, False), None, 0, None, 100, 10),
}


async def _time_per_call(call, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        await call()
    return (time.perf_counter() - start) / count * 1e6


async def measure(rounds: int, only: list[str] | None) -> dict[str, dict[str, float]]:
    try:
        import langgraph  # noqa: F401
        have_langgraph = True
    except ImportError:
        have_langgraph = False
    results: dict[str, dict[str, float]] = {}
    for name, (mk_plait, mk_lg, p_in, lg_in, nodes, count) in SHAPES.items():
        if only and name not in only:
            continue
        graph = mk_plait()
        graph.validate()

        async def plait_call():
            return await graph.run(p_in)

        arms = {"plait_us": plait_call}
        expected = (await graph.run(p_in)).output
        if have_langgraph and mk_lg is not None:
            compiled = mk_lg()
            config = {"recursion_limit": nodes * 2 + 10}

            async def lg_call():
                return await compiled.ainvoke(dict(lg_in), config)

            arms["langgraph_us"] = lg_call
        samples: dict[str, list[float]] = {arm: [] for arm in arms}
        for arm, call in arms.items():
            await _time_per_call(call, max(1, count // 4))  # warm up
        for _ in range(rounds):
            for arm, call in arms.items():  # interleave arms so machine noise hits both
                samples[arm].append(await _time_per_call(call, count))
        row = {arm: statistics.median(values) for arm, values in samples.items()}
        row["nodes"] = nodes
        row["plait_output"] = expected
        results[name] = row
    return results


def print_table(results: dict[str, dict[str, float]]) -> None:
    print(f"{'shape':<14} {'nodes':>5} {'plait_us':>11} {'langgraph_us':>13} {'ratio':>7} "
          f"{'plait_us/node':>14} {'lg_us/node':>11}")
    for name, row in results.items():
        lg = row.get("langgraph_us")
        ratio = f"{lg / row['plait_us']:.1f}x" if lg else "n/a"
        lg_text = f"{lg:13.1f}" if lg else f"{'n/a':>13}"
        lg_node = f"{lg / row['nodes']:11.2f}" if lg else f"{'n/a':>11}"
        print(f"{name:<14} {row['nodes']:>5} {row['plait_us']:11.1f} {lg_text} {ratio:>7} "
              f"{row['plait_us'] / row['nodes']:14.2f} {lg_node}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per shape (median is reported)")
    parser.add_argument("--shape", action="append", help="only these shapes (repeatable)")
    args = parser.parse_args()
    results = anyio.run(measure, args.rounds, args.shape)
    print_table(results)
    if args.json:
        shapes = {name: {k: v for k, v in row.items() if k.endswith("_us")} for name, row in results.items()}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"shapes": shapes}, f, indent=2)


if __name__ == "__main__":
    main()

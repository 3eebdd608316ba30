"""Graphs that ask a person, shared by test_interrupts.py and the subprocess it SIGKILLs."""

import os
import sys
import time

import anyio

from plait import Graph, RunContext


def approval(calls: list[str]) -> Graph:
    """draft -> review (asks whether to publish) -> publish."""
    g = Graph("approval")

    @g.node
    def draft(topic: str) -> str:
        calls.append("draft")
        return f"a post about {topic}"

    @g.node
    async def review(draft: str, ctx: RunContext) -> bool:
        calls.append("review")
        ok = await ctx.interrupt({"publish?": draft}, returns=bool)
        calls.append(f"answered {ok}")
        marker = os.environ.get("PLAIT_TEST_MARKER")
        if marker:  # the crash test: tell the parent the answer is recorded, then wait to be killed
            with open(marker, "w") as f:
                f.write("answered")
            time.sleep(600)
        return ok

    @g.node
    def publish(draft: str, review: bool) -> str:
        calls.append("publish")
        return draft if review else "withheld"

    g.edge(draft, review).edge(draft, publish).edge(review, publish)
    return g


def two_questions(calls: list[str]) -> Graph:
    """Two parallel branches that each ask, and a join of both answers."""
    g = Graph("two_questions")

    @g.node
    async def left(x: int, ctx: RunContext) -> int:
        calls.append("left")
        await anyio.sleep(0)
        return x + await ctx.interrupt("left?", returns=int)

    @g.node
    async def right(x: int, ctx: RunContext) -> int:
        calls.append("right")
        return x * await ctx.interrupt("right?", returns=int)

    @g.node
    def join(left: int, right: int) -> list[int]:
        calls.append("join")
        return [left, right]

    g.edge(left, join).edge(right, join)
    return g


if __name__ == "__main__":  # python interrupt_graphs.py DB RUN_ID ANSWER: resume with ANSWER (and get killed)
    db, run_id, answer = sys.argv[1:]
    result = anyio.run(lambda: approval([]).run(checkpoint=db, run_id=run_id, resume={"review#0.0": answer == "true"}))
    print(result.status)

"""The README's durable example, with a set input too, run in its own process: `python topic_pipeline.py DB PHASE`.

PHASE ``fail``: publishing fails after the draft was committed. PHASE ``resume``:
run again with the recorded input. Prints the nodes that ran, as JSON.
"""

import json
import sys

import anyio

from plait import Graph, NodeFailedError, Request, RunContext, ScriptedBackend

calls = []
g = Graph("durable")


@g.node
async def draft(topic: str, tags: set[str], ctx: RunContext) -> str:
    calls.append("draft")
    return (await ctx.generate(Request(prompt=f"Write about {topic} ({len(tags)} tags)"))).text


@g.node
def publish(draft: str) -> str:
    calls.append("publish")
    if sys.argv[2] == "fail":
        raise ConnectionError("publishing service down")
    return draft.upper()


g.edge(draft, publish)


async def main() -> None:
    backend = ScriptedBackend(["a short text"])
    tags = {f"tag-{i}" for i in range(12)}
    try:
        if sys.argv[2] == "fail":
            await g.run({"topic": "topic", "tags": tags}, backend=backend, checkpoint=sys.argv[1], run_id="post")
        else:
            await g.run(backend=backend, checkpoint=sys.argv[1], run_id="post")
    except NodeFailedError:
        pass
    print(json.dumps(calls))


anyio.run(main)

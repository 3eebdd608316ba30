"""A deterministic three-node graph over a scripted backend, run as a batch by the fault tests."""

import os

import anyio

from plait import FunctionBackend, Graph, Request, RunContext, SamplingParams

graph = Graph("pipeline")
LATENCY = float(os.environ.get("PIPELINE_LATENCY", "0.02"))


@graph.node
async def draft(x: int, ctx: RunContext) -> str:
    completion = await ctx.generate(Request(prompt=f"draft for {x}", params=SamplingParams(max_tokens=8)))
    return completion.text


@graph.node
async def refine(draft: str, x: int) -> str:
    await anyio.sleep(LATENCY)
    if x % 50 == 49:
        raise ValueError(f"input {x} is poisoned")
    return draft.upper()


@graph.node
def score(refine: str, x: int) -> dict:
    return {"x": x, "text": refine, "score": (x * 7919) % 101}


graph.chain(draft, refine, score)


def make_backend() -> FunctionBackend:
    return FunctionBackend(lambda r: f"<{r.prompt_text()}>", latency=LATENCY, prefix_cache=False)

"""A bounded refine-until-valid loop: the model drafts, a checker sends it back with feedback, at most 3 times."""

import anyio

from plait import Graph, Request, Route, RunContext, SamplingParams, ScriptedBackend

graph = Graph("bounded_loop")
MAX_WORDS = 8


@graph.node
async def draft(topic: str, feedback: str = "", ctx: RunContext = None) -> str:
    prompt = f"Write a one-line slogan about {topic}."
    if feedback:
        prompt += f"\nYour previous attempt was rejected: {feedback}\nTry again."
    completion = await ctx.generate(Request(prompt=prompt, params=SamplingParams(max_tokens=32, stop=("\n",))))
    return completion.text.strip()


@graph.node
def check(draft: str) -> Route[str]:
    words = len(draft.split())
    if words <= MAX_WORDS:
        return Route("publish", draft)
    return Route("draft", f"{words} words is too long; use at most {MAX_WORDS}.")


@graph.node
def publish(slogan: str) -> str:
    return slogan


graph.edge(draft, check)
graph.loop(check, back_to=draft, param="feedback", exit=publish, max_iterations=3)


def make_backend() -> ScriptedBackend:
    return ScriptedBackend([
        " Graphs that think in parallel, plan ahead, check their work and never wait for slow branches",
        " Parallel graphs, careful answers.",
    ])


async def main() -> None:
    result = await graph.run({"topic": "plait"}, backend=make_backend())
    print(result.output, f"(after {result.nodes['draft'].runs} drafts)")


if __name__ == "__main__":
    anyio.run(main)
